//! The flash spool's emitter and a writer that holds what it took until its
//! `flush` (a buffered link): lines the writer took whole before a write
//! failed are neither written again when the batch is cleared for room and
//! loaded back from flash, nor evicted from flash while the writer holds
//! them. What a reader parses is what `Counters::delivered` counts.
//! (Found by a review: the first case delivered a line twice, the second
//! delivered an event counted dropped.)
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use common::flash::{LinkDown as Down, TestClock, fill_ids, reading};
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::emitter::Config;
use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter, WhenFull};
use ossa_events_core::{EmitError, RandomIds};

/// A link that keeps what it took in `unflushed` until a `flush` passes it
/// on to `wire`; a failed write passes nothing on. With `line_then_fail`
/// set, the next write takes only up to its first `\n` (a short `Ok`), and
/// the write after it fails.
#[derive(Clone, Default)]
struct Buffered {
    wire: Rc<RefCell<Vec<u8>>>,
    unflushed: Rc<RefCell<Vec<u8>>>,
    down: Rc<Cell<bool>>,
    line_then_fail: Rc<Cell<u8>>,
    /// With `json_then_zero` set, the next write takes up to its first `\n`
    /// but not the `\n` itself (a short `Ok`), and the write after it
    /// returns `Ok(0)` (a writer with no room left).
    json_then_zero: Rc<Cell<u8>>,
}

impl embedded_io::ErrorType for Buffered {
    type Error = Down;
}

impl embedded_io::Write for Buffered {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Down> {
        match self.json_then_zero.get() {
            1 => {
                self.json_then_zero.set(2);
                let n = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
                self.unflushed.borrow_mut().extend_from_slice(&buf[..n]);
                return Ok(n);
            }
            2 => {
                self.json_then_zero.set(0);
                return Ok(0);
            }
            _ => {}
        }
        match self.line_then_fail.get() {
            1 => {
                self.line_then_fail.set(2);
                let n = buf
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(buf.len(), |p| p + 1);
                self.unflushed.borrow_mut().extend_from_slice(&buf[..n]);
                return Ok(n);
            }
            2 => {
                self.line_then_fail.set(0);
                return Err(Down);
            }
            _ => {}
        }
        if self.down.get() {
            return Err(Down);
        }
        self.unflushed.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Down> {
        if self.down.get() {
            return Err(Down);
        }
        let taken = std::mem::take(&mut *self.unflushed.borrow_mut());
        self.wire.borrow_mut().extend_from_slice(&taken);
        Ok(())
    }
}

type Em<const FLASH: usize> = SpoolEmitter<
    'static,
    Buffered,
    RamFlash<FLASH, 1024>,
    RandomIds<fn(&mut [u8; 16])>,
    TestClock,
    2,
    1024,
    512,
>;

fn emitter<const FLASH: usize>(
    link: &Buffered,
    clock: &TestClock,
    when_full: WhenFull,
) -> Em<FLASH> {
    let spool = FlashSpool::<_, 512>::open(RamFlash::<FLASH, 1024>::new(), 0..FLASH as u32)
        .unwrap()
        .when_full(when_full);
    let config = Config::new("/devices/greenhouse-7")
        .batch_size(2)
        .flush_interval_ms(1000)
        .format(BatchFormat::JsonLines);
    SpoolEmitter::new(
        config,
        link.clone(),
        spool,
        RandomIds(fill_ids as fn(&mut [u8; 16])),
        clock.clone(),
    )
}

fn ids(link: &Buffered) -> Vec<String> {
    common::read(BatchFormat::JsonLines, &link.wire.borrow()).ids
}

/// Emits e0, e1 (the batch is full: its write goes as `link` was set up to
/// fail, and both go to flash) and e2 (no room in RAM: the copies are
/// cleared for it), then flushes: each line is written once.
fn written_once_after_the_batch_makes_room(set_up: impl FnOnce(&Buffered)) {
    let (link, clock) = (Buffered::default(), TestClock::default());
    let mut em: Em<8192> = emitter(&link, &clock, WhenFull::DropOldest);
    set_up(&link);
    for id in ["e0", "e1", "e2"] {
        em.emit(reading(id)).unwrap();
    }
    clock.0.set(clock.0.get() + 1000);
    em.flush().unwrap();
    assert_eq!(ids(&link), ["e0", "e1", "e2"], "e0 was written twice");
    assert_eq!(em.counters().delivered, 3);
    assert_eq!(em.spool().len(), 0);
}

#[test]
fn a_line_the_writer_took_is_not_written_again_after_the_batch_makes_room() {
    // e0's line is taken, then the write of e1 fails.
    written_once_after_the_batch_makes_room(|link| link.line_then_fail.set(1));
}

#[test]
fn a_line_the_writer_holds_is_not_evicted_from_flash() {
    let (link, clock) = (Buffered::default(), TestClock::default());
    // Two pages: evictions start early.
    let mut em: Em<2048> = emitter(&link, &clock, WhenFull::DropOldest);
    link.line_then_fail.set(1);
    em.emit(reading("e0")).unwrap();
    em.emit(reading("e1")).unwrap(); // e0's line taken, then the write fails
    link.down.set(true);
    let mut refused = 0;
    for i in 2..12 {
        match em.emit(reading(&format!("e{i}"))) {
            Ok(()) => {}
            Err(EmitError::SpoolFull) => refused += 1,
            Err(e) => panic!("e{i}: {e:?}"),
        }
    }
    link.down.set(false);
    clock.0.set(clock.0.get() + 1000);
    em.flush().unwrap();
    let got = ids(&link);
    let c = em.counters();
    assert_eq!(got.len() as u64, c.delivered, "parsed {got:?} vs {c:?}");
    assert_eq!(got[0], "e0", "{got:?}");
    // Every event ends once: delivered, or dropped (evicted or refused).
    assert_eq!(c.delivered + c.dropped, 12, "{c:?}");
    assert!(refused > 0 || c.dropped > 0, "the spool filled: {c:?}");
    let mut unique = got.clone();
    unique.dedup();
    assert_eq!(unique, got, "no line twice");
}

#[test]
fn a_line_missing_only_its_newline_is_not_written_again_after_the_batch_makes_room() {
    // The writer takes e0's JSON but not its `\n`, then has no room
    // (`Ok(0)`). The `\n` owed to the reader when the copies are cleared
    // ends e0's line: e0 is delivered by it, not to be written again.
    written_once_after_the_batch_makes_room(|link| link.json_then_zero.set(1));
}
