//! A NOR flash that loses power at a chosen operation, a link that goes
//! down, and what a reader of the flash spool's output must see.
#![cfg(feature = "flash-spool")]

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::emitter::Config;
use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter, SpoolMode, WhenFull};
use ossa_events_core::{Clock, Event, EventBuilder, RandomIds, Timestamp};

pub(crate) const PAGE: usize = 1024;
pub(crate) const FLASH: usize = 8 * PAGE;
pub(crate) type Ram = RamFlash<FLASH, PAGE>;

// --- a flash that loses power ------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CutError {
    PowerOff,
    Broken,
}

impl NorFlashError for CutError {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::Other
    }
}

/// What the flash does, shared with the test.
#[derive(Debug, Default)]
pub(crate) struct Power {
    /// Mutating operations (writes, erases) so far.
    pub(crate) ops: Cell<u64>,
    pub(crate) erases: Cell<u64>,
    /// The operation that loses power (left half done).
    pub(crate) cut_at: Cell<Option<u64>>,
    /// Power is off: every operation fails.
    pub(crate) off: Cell<bool>,
    /// Writes fail (a broken flash) without losing power.
    pub(crate) broken: Cell<bool>,
}

pub(crate) struct CutFlash {
    pub(crate) ram: Ram,
    pub(crate) power: Rc<Power>,
}

impl CutFlash {
    /// Counts the operation; at the cut, turns the power off.
    fn op(&self) -> Result<Option<u64>, CutError> {
        if self.power.off.get() {
            return Err(CutError::PowerOff);
        }
        if self.power.broken.get() {
            return Err(CutError::Broken);
        }
        let k = self.power.ops.get();
        self.power.ops.set(k + 1);
        if self.power.cut_at.get() == Some(k) {
            self.power.off.set(true);
            return Ok(Some(k));
        }
        Ok(None)
    }
}

impl ErrorType for CutFlash {
    type Error = CutError;
}

impl ReadNorFlash for CutFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), CutError> {
        if self.power.off.get() {
            return Err(CutError::PowerOff);
        }
        self.ram.read(offset, bytes).map_err(|_| CutError::Broken)
    }
    fn capacity(&self) -> usize {
        FLASH
    }
}

impl NorFlash for CutFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), CutError> {
        let cut = self.op()?;
        self.power.erases.set(self.power.erases.get() + 1);
        let Some(k) = cut else {
            return self.ram.erase(from, to).map_err(|_| CutError::Broken);
        };
        // Cut mid-erase: part of the range is erased, the rest keeps its bits.
        let (from, to) = (from as usize, to as usize);
        let part = (to - from) * (k as usize % 4) / 4;
        self.ram.as_bytes_mut()[from..from + part].fill(0xFF);
        Err(CutError::PowerOff)
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), CutError> {
        let Some(k) = self.op()? else {
            return self.ram.write(offset, bytes).map_err(|_| CutError::Broken);
        };
        // Cut mid-write: the first words are written, one is half written.
        let words = bytes.len() / 4;
        let whole = (k as usize) % (words + 1);
        if whole > 0 {
            self.ram
                .write(offset, &bytes[..whole * 4])
                .map_err(|_| CutError::Broken)?;
        }
        if whole < words {
            let at = offset as usize + whole * 4;
            let cell = &mut self.ram.as_bytes_mut()[at];
            *cell &= bytes[whole * 4] | 0x0F;
        }
        Err(CutError::PowerOff)
    }
}

impl MultiwriteNorFlash for CutFlash {}

// --- the writer and the clock --------------------------------------------------------

/// A link that is up or down; what it took sits in `out`. When the power
/// goes off it takes nothing more (the whole device is off).
#[derive(Clone, Default)]
pub(crate) struct Link {
    pub(crate) out: Rc<RefCell<Vec<u8>>>,
    pub(crate) down: Rc<Cell<bool>>,
    pub(crate) power: Rc<Power>,
}

impl Link {
    fn up(&self) -> bool {
        !self.down.get() && !self.power.off.get()
    }
}

#[derive(Debug)]
pub(crate) struct LinkDown;

impl std::fmt::Display for LinkDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("link down")
    }
}

impl std::error::Error for LinkDown {}

impl embedded_io::Error for LinkDown {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::NotConnected
    }
}

impl embedded_io::ErrorType for Link {
    type Error = LinkDown;
}

impl embedded_io::Write for Link {
    fn write(&mut self, buf: &[u8]) -> Result<usize, LinkDown> {
        if !self.up() {
            return Err(LinkDown);
        }
        self.out.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), LinkDown> {
        if self.up() { Ok(()) } else { Err(LinkDown) }
    }
}

#[derive(Clone, Default)]
pub(crate) struct TestClock(pub(crate) Rc<Cell<i64>>);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(1_795_608_000_000 + self.0.get()).unwrap()
    }
}

/// The tests' emitter over a flash `F`.
pub(crate) type EmOn<F> =
    SpoolEmitter<'static, Link, F, RandomIds<fn(&mut [u8; 16])>, TestClock, 4, 1024, 512>;

pub(crate) type Em = EmOn<CutFlash>;

pub(crate) fn fill_ids(b: &mut [u8; 16]) {
    b.fill(9);
}

pub(crate) fn open(
    ram: Ram,
    pages: u32,
    power: Rc<Power>,
    mode: SpoolMode,
    when_full: WhenFull,
    link: Link,
    clock: TestClock,
) -> Em {
    let flash = CutFlash { ram, power };
    let spool = FlashSpool::open(flash, 0..pages * PAGE as u32)
        .expect("the spool opens whatever the cut left")
        .mode(mode)
        .when_full(when_full);
    emitter(spool, link, clock)
}

/// An emitter on a fresh flash of `pages` pages, with the link and the
/// clock it uses (to take the link down, to move the clock).
pub(crate) fn linked(pages: u32, mode: SpoolMode, when_full: WhenFull) -> (Em, Link, TestClock) {
    let power = Rc::new(Power::default());
    let link = Link {
        power: power.clone(),
        ..Link::default()
    };
    let clock = TestClock::default();
    let em = open(
        Ram::new(),
        pages,
        power,
        mode,
        when_full,
        link.clone(),
        clock.clone(),
    );
    (em, link, clock)
}

/// The tests' emitter over any flash: batches of 2, JSON Lines, a flush
/// interval of 1 s, ids given per event.
pub(crate) fn emitter<F: NorFlash>(
    spool: FlashSpool<F, 512>,
    link: Link,
    clock: TestClock,
) -> EmOn<F> {
    let config = Config::new("/devices/greenhouse-7")
        .batch_size(2)
        .flush_interval_ms(1000)
        .format(BatchFormat::JsonLines);
    SpoolEmitter::new(
        config,
        link,
        spool,
        RandomIds(fill_ids as fn(&mut [u8; 16])),
        clock,
    )
}

pub(crate) fn reading(id: &str) -> EventBuilder<'_> {
    Event::builder()
        .id(id)
        .ty("com.example.greenhouse.reading")
        .data_json(
            r#"{"zone":"north","celsius":21.5,"humidity_pct":63,"note":"steady climb since dawn"}"#,
        )
}

/// Checks what the reader got: every line an event (or a torn prefix of
/// one), nothing that was not emitted, first arrivals in emit order, every
/// `must` id there, and at most `max_repeats` repeats.
pub(crate) fn check(
    stream: &[u8],
    all: &[String],
    must: &[String],
    max_repeats: usize,
    what: &str,
) {
    let got = super::read(BatchFormat::JsonLines, stream);
    got.assert_only_torn_fragments(stream);
    let emitted: HashSet<&String> = all.iter().collect();
    for id in &got.ids {
        assert!(emitted.contains(id), "{what}: {id} was never emitted");
    }
    let mut seen = HashSet::new();
    let firsts: Vec<&String> = got.ids.iter().filter(|id| seen.insert(*id)).collect();
    let order: Vec<usize> = firsts
        .iter()
        .map(|id| all.iter().position(|a| a == *id).unwrap())
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "{what}: out of order: {firsts:?}"
    );
    for id in must {
        assert!(
            seen.contains(id),
            "{what}: accepted {id} never arrived; got {firsts:?}"
        );
    }
    let repeats = got.ids.len() - firsts.len();
    assert!(
        repeats <= max_repeats,
        "{what}: {repeats} repeats: {:?}",
        got.ids
    );
}
