//! The flash spool (feature `flash-spool`) keeps events through writer
//! outages and power cuts: a power cut is injected at every single flash
//! operation (write or erase, left half done as a real cut leaves it) of a
//! run whose writer goes down and comes back; after each cut the flash is
//! reopened, as after a reboot, and drained. Every event `emit` accepted in
//! `SpoolMode::Always` arrives, in order, never mangled, with repeats only
//! from the one batch whose removal from flash the cut interrupted.
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::emitter::Config;
use ossa_events_core::spool::{
    BlockingFlash, FlashSpool, RamFlash, SpoolEmitter, SpoolMode, WhenFull, cache::Cache,
};
use ossa_events_core::{Clock, Event, EventBuilder, RandomIds, Timestamp};

const PAGE: usize = 1024;
const FLASH: usize = 8 * PAGE;
type Ram = RamFlash<FLASH, PAGE>;

// --- a flash that loses power ------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CutError {
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
struct Power {
    /// Mutating operations (writes, erases) so far.
    ops: Cell<u64>,
    erases: Cell<u64>,
    /// The operation that loses power (left half done).
    cut_at: Cell<Option<u64>>,
    /// Power is off: every operation fails.
    off: Cell<bool>,
    /// Writes fail (a broken flash) without losing power.
    broken: Cell<bool>,
}

struct CutFlash {
    ram: Ram,
    power: Rc<Power>,
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
struct Link {
    out: Rc<RefCell<Vec<u8>>>,
    down: Rc<Cell<bool>>,
    power: Rc<Power>,
}

impl Link {
    fn up(&self) -> bool {
        !self.down.get() && !self.power.off.get()
    }
}

#[derive(Debug)]
struct LinkDown;

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
struct TestClock(Rc<Cell<i64>>);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(1_795_608_000_000 + self.0.get()).unwrap()
    }
}

type Em = SpoolEmitter<
    'static,
    Link,
    BlockingFlash<CutFlash>,
    Cache<
        sequential_storage::cache::Uncached,
        sequential_storage::cache::Uncached,
        sequential_storage::cache::Uncached,
    >,
    RandomIds<fn(&mut [u8; 16])>,
    TestClock,
    4,
    1024,
    512,
>;

fn fill_ids(b: &mut [u8; 16]) {
    b.fill(9);
}

fn open(
    ram: Ram,
    power: Rc<Power>,
    mode: SpoolMode,
    when_full: WhenFull,
    link: Link,
    clock: TestClock,
) -> Em {
    let flash = BlockingFlash(CutFlash { ram, power });
    let spool = FlashSpool::open(flash, 0..FLASH as u32, Cache::new_uncached())
        .expect("the spool opens whatever the cut left")
        .mode(mode)
        .when_full(when_full);
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

fn reading(id: &str) -> EventBuilder<'_> {
    Event::builder()
        .id(id)
        .ty("com.example.greenhouse.reading")
        .data_json(
            r#"{"zone":"north","celsius":21.5,"humidity_pct":63,"note":"steady climb since dawn"}"#,
        )
}

/// What one run did before its power went off.
struct Run {
    /// Ids whose `emit` returned `Ok` before the call the cut hit.
    accepted: Vec<String>,
    /// The id whose `emit` the cut hit, if any (it may or may not arrive).
    cut_in: Option<String>,
    /// Every id given to `emit`, in order.
    all: Vec<String>,
    ram: Ram,
}

const EVENTS: usize = 45;

/// Emits `EVENTS` readings, 300 ms apart, polling between them; the link is
/// down for events 6..24. Stops at the first call during which the power
/// went off (`cut_at`), or runs to the end and flushes.
fn run(mode: SpoolMode, power: &Rc<Power>, link: &Link) -> Run {
    let clock = TestClock::default();
    let mut em = open(
        Ram::new(),
        power.clone(),
        mode,
        WhenFull::DropOldest,
        link.clone(),
        clock.clone(),
    );
    let mut out = Run {
        accepted: Vec::new(),
        cut_in: None,
        all: Vec::new(),
        ram: Ram::new(),
    };
    for i in 0..EVENTS {
        link.down.set((6..24).contains(&i));
        let id = format!("ev-{i:04}");
        out.all.push(id.clone());
        let r = em.emit(reading(&id));
        if power.off.get() {
            out.cut_in = Some(id);
            break;
        }
        r.unwrap_or_else(|e| panic!("emit {id}: {e}"));
        out.accepted.push(id);
        clock.0.set(clock.0.get() + 300);
        let _ = em.poll(clock.now());
        if power.off.get() {
            break;
        }
    }
    if !power.off.get() {
        link.down.set(false);
        em.flush().unwrap();
    }
    let (_link, spool) = em.into_parts();
    out.ram = spool.into_flash().0.0.ram;
    out
}

/// Reboots on what the flash holds and drains it to the link.
fn reboot_and_drain(ram: Ram, mode: SpoolMode, link: &Link) -> usize {
    let power = Rc::new(Power::default());
    let link = Link {
        power: power.clone(),
        down: Rc::new(Cell::new(false)),
        out: link.out.clone(),
    };
    let mut em = open(
        ram,
        power,
        mode,
        WhenFull::DropOldest,
        link,
        TestClock::default(),
    );
    let held = em.spool().len();
    em.flush().unwrap();
    assert!(em.spool().is_empty(), "the drain empties the spool");
    assert_eq!(em.spool_counters().replayed, held as u64);
    held
}

/// Checks what the reader got: every line an event (or a torn prefix of
/// one), nothing that was not emitted, first arrivals in emit order, every
/// `must` id there, and at most `max_repeats` repeats.
fn check(stream: &[u8], all: &[String], must: &[String], max_repeats: usize, what: &str) {
    let got = common::read(BatchFormat::JsonLines, stream);
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

fn cut_everywhere(mode: SpoolMode) -> (u64, u64) {
    // The reference run, no cut: how many flash operations there are.
    let power = Rc::new(Power::default());
    let link = Link {
        power: power.clone(),
        ..Link::default()
    };
    let reference = run(mode, &power, &link);
    let total = power.ops.get();
    let erases = power.erases.get();
    assert_eq!(reference.accepted.len(), EVENTS);
    check(
        &link.out.borrow(),
        &reference.all,
        &reference.all,
        0,
        "no cut",
    );
    assert!(
        total > 50 && erases > 0,
        "the run uses the flash: {total} ops, {erases} erases"
    );

    for k in 0..total {
        let power = Rc::new(Power::default());
        power.cut_at.set(Some(k));
        let link = Link {
            power: power.clone(),
            ..Link::default()
        };
        let before = run(mode, &power, &link);
        assert!(power.off.get(), "cut {k} happened");
        reboot_and_drain(before.ram, mode, &link);
        let what = format!(
            "{mode:?}, power cut at flash operation {k} of {total} (in {:?})",
            before.cut_in
        );
        // Always: every accepted event is in flash before `emit` returns.
        // WhenDown: events only in RAM at the cut are lost, by design; the
        // ones in flash are checked by the outage test below.
        let must: &[String] = if mode == SpoolMode::Always {
            &before.accepted
        } else {
            &[]
        };
        check(&link.out.borrow(), &before.all, must, 4, &what);
    }
    (total, erases)
}

#[test]
fn always_mode_loses_no_accepted_event_to_a_power_cut_at_any_flash_operation() {
    let (total, erases) = cut_everywhere(SpoolMode::Always);
    eprintln!("Always: a power cut at each of {total} flash operations ({erases} erases)");
}

#[test]
fn when_down_mode_reopens_and_drains_whatever_flash_operation_a_power_cut_hits() {
    let (total, erases) = cut_everywhere(SpoolMode::WhenDown);
    eprintln!("WhenDown: a power cut at each of {total} flash operations ({erases} erases)");
}
