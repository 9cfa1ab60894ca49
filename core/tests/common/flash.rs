//! A NOR flash that loses power at a chosen operation, a link that goes
//! down, what a reader of the flash spool's output must see, and random
//! runs of the flash spool's emitter against a scripted writer.
#![cfg(feature = "flash-spool")]

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::emitter::{Config, Counters, EmitError};
use ossa_events_core::spool::{
    FlashSpool, RamFlash, SpoolCounters, SpoolEmitter, SpoolMode, WhenFull,
};
use ossa_events_core::{Clock, Event, EventBuilder, RandomIds, Timestamp};
use proptest::prelude::*;

use super::{Act, FlushAct, Reading, Scripted};

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

/// The spool's mode and full policy a property case drew: `Always` or
/// `WhenDown`, `DropOldest` or `DropNewest`.
pub(crate) fn policies(always: bool, drop_oldest: bool) -> (SpoolMode, WhenFull) {
    (
        if always {
            SpoolMode::Always
        } else {
            SpoolMode::WhenDown
        },
        if drop_oldest {
            WhenFull::DropOldest
        } else {
            WhenFull::DropNewest
        },
    )
}

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

// --- random runs against a scripted writer -------------------------------------------

/// One step of a random run.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Emits a fresh event whose subject is this many bytes long.
    Emit(usize),
    /// Moves the clock on this many milliseconds, then polls.
    Poll(i64),
    Flush,
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..380).prop_map(Op::Emit),
        2 => (0i64..1500).prop_map(Op::Poll),
        1 => Just(Op::Flush),
    ]
}

/// Writes that take all, some or nothing; a failed one passes nothing on.
pub(crate) fn write_act() -> impl Strategy<Value = Act> {
    prop_oneof![
        5 => Just(Act::Accept),
        3 => (1usize..300).prop_map(Act::Short),
        3 => Just(Act::Fail { passed: 0 }),
        1 => Just(Act::Zero),
    ]
}

/// Flushes that succeed or lose what was not yet flushed.
pub(crate) fn flush_act() -> impl Strategy<Value = FlushAct> {
    prop_oneof![5 => Just(FlushAct::Ok), 1 => Just(FlushAct::FailLossy)]
}

pub(crate) fn format() -> impl Strategy<Value = BatchFormat> {
    prop_oneof![Just(BatchFormat::JsonLines), Just(BatchFormat::JsonBatch)]
}

/// The random runs' emitter: a scripted writer, a flash `F`, batches of up
/// to `B` bytes.
pub(crate) type ScriptedEm<F, const B: usize> =
    SpoolEmitter<'static, Scripted, F, RandomIds<fn(&mut [u8; 16])>, TestClock, 4, B, 512>;

/// A spool on the first `bytes` bytes of `flash`.
pub(crate) fn open_spool<F: NorFlash>(
    flash: F,
    bytes: usize,
    mode: SpoolMode,
    when_full: WhenFull,
) -> FlashSpool<F, 512> {
    FlashSpool::<_, 512>::open(flash, 0..bytes as u32)
        .unwrap()
        .mode(mode)
        .when_full(when_full)
}

/// The random runs' emitter over `spool`: a flush interval of 1 s, the
/// same id bytes for every event (each event is given its own id).
pub(crate) fn scripted_emitter<F: NorFlash, const B: usize>(
    spool: FlashSpool<F, 512>,
    format: BatchFormat,
    batch_size: usize,
    writer: Scripted,
    clock: TestClock,
) -> ScriptedEm<F, B> {
    let config = Config::new("/dev/prop")
        .batch_size(batch_size)
        .flush_interval_ms(1000)
        .format(format);
    let ids: RandomIds<fn(&mut [u8; 16])> = RandomIds(|b| b.fill(9));
    SpoolEmitter::new(config, writer, spool, ids, clock)
}

/// The ids an emitter over `spool` writes out as it drains it (a restart
/// from what a run left in flash, its writer working).
pub(crate) fn drained_ids<F: NorFlash, const B: usize>(
    spool: FlashSpool<F, 512>,
    format: BatchFormat,
) -> Vec<String> {
    let w = Scripted::new(&[], &[]);
    let mut em: ScriptedEm<F, B> =
        scripted_emitter(spool, format, 4, w.clone(), TestClock::default());
    for _ in 0..100 {
        let _ = em.flush();
        if em.pending() == 0 {
            break;
        }
    }
    assert_eq!(em.pending(), 0, "the restart drains");
    super::read(format, &w.wire.borrow().wire).ids
}

/// What a random run did: the ids of the events the emitter accepted, in
/// emit order, and how many it refused for a full spool.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) accepted: Vec<String>,
    pub(crate) refused: u64,
}

/// Does `ops` on `em` (events `e1`, `e2`, ... of type `t`), calling
/// `check(em, accepted, refused, stage)` after each.
pub(crate) fn drive<F: NorFlash, const B: usize>(
    em: &mut ScriptedEm<F, B>,
    clock: &TestClock,
    ops: &[Op],
    mut check: impl FnMut(&ScriptedEm<F, B>, &[String], u64, &str),
) -> Tally {
    let mut t = Tally::default();
    let mut next = 0usize;
    for (k, op) in ops.iter().enumerate() {
        match *op {
            Op::Emit(len) => {
                next += 1;
                let id = format!("e{next}");
                let subject = "s".repeat(len);
                match em.emit(Event::builder().id(&id).ty("t").subject(&subject)) {
                    Ok(()) => t.accepted.push(id),
                    Err(EmitError::SpoolFull) => t.refused += 1,
                    Err(EmitError::TooLarge) => {}
                    Err(e) => panic!("{e:?}"),
                }
            }
            Op::Poll(ms) => {
                clock.0.set(clock.0.get() + ms);
                let _ = em.poll(clock.now());
            }
            Op::Flush => {
                let _ = em.flush();
            }
        }
        check(em, &t.accepted, t.refused, &format!("step {k} {op:?}"));
    }
    t
}

/// `emitted` counts every accepted event, `dropped` every refused or
/// evicted one, and every accepted event is delivered, pending or evicted,
/// or (where the flash fails: `damaged_counts`) counted damaged. Returns
/// the counters for the checks that follow.
pub(crate) fn assert_counts<F: NorFlash, const B: usize>(
    em: &ScriptedEm<F, B>,
    accepted: &[String],
    refused: u64,
    damaged_counts: bool,
    stage: &str,
) -> (Counters, SpoolCounters) {
    let c = em.counters();
    let s = em.spool_counters();
    assert_eq!(
        c.emitted,
        accepted.len() as u64,
        "{stage}: emitted {c:?} {s:?}"
    );
    assert_eq!(
        c.dropped,
        refused + s.evicted,
        "{stage}: dropped {c:?} {s:?}"
    );
    let damaged = if damaged_counts { s.damaged } else { 0 };
    assert_eq!(
        c.emitted,
        c.delivered + em.pending() as u64 + s.evicted + damaged,
        "{stage}: every accepted event delivered, pending, evicted or damaged: {c:?} {s:?} pending {} spool {}",
        em.pending(),
        em.spool().len()
    );
    (c, s)
}

/// In JSON Lines no line that fails to parse holds more than one event.
pub(crate) fn assert_none_glued(format: BatchFormat, r: &Reading, stage: &str) {
    if format == BatchFormat::JsonLines {
        for bad in &r.unparsed {
            let text = String::from_utf8_lossy(bad);
            assert!(
                text.matches("specversion").count() <= 1,
                "{stage}: glued: {text}"
            );
        }
    }
}

/// The reader parses as many events from `wire` as were counted delivered.
pub(crate) fn assert_parses_delivered(
    r: &Reading,
    c: &Counters,
    s: &SpoolCounters,
    wire: &[u8],
    stage: &str,
) {
    assert_eq!(
        r.ids.len() as u64,
        c.delivered,
        "{stage}: the reader parses what was counted delivered: {:?} {c:?} {s:?}\n{}",
        r.ids,
        String::from_utf8_lossy(wire)
    );
}

// --- a flash the test reaches into ---------------------------------------------------

/// A RAM flash the test reaches into while a spool owns it: its bits can be
/// changed (bit rot), and reads that touch one of the `bad` ranges fail
/// every time (a bad sector).
#[derive(Clone, Default)]
pub(crate) struct Shared {
    pub(crate) ram: Rc<RefCell<Ram>>,
    pub(crate) bad: Rc<RefCell<Vec<std::ops::Range<u32>>>>,
}

impl ErrorType for Shared {
    type Error = CutError;
}

impl ReadNorFlash for Shared {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), CutError> {
        let end = offset + bytes.len() as u32;
        if self
            .bad
            .borrow()
            .iter()
            .any(|r| r.start < end && offset < r.end)
        {
            return Err(CutError::Broken);
        }
        self.ram
            .borrow_mut()
            .read(offset, bytes)
            .map_err(|_| CutError::Broken)
    }
    fn capacity(&self) -> usize {
        FLASH
    }
}

impl NorFlash for Shared {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), CutError> {
        self.ram
            .borrow_mut()
            .erase(from, to)
            .map_err(|_| CutError::Broken)
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), CutError> {
        self.ram
            .borrow_mut()
            .write(offset, bytes)
            .map_err(|_| CutError::Broken)
    }
}

/// A record as the test reads it from the spool's layout (4-byte words: a
/// page header of 8 bytes, a record header of 12, the JSON padded to 4).
#[derive(Debug, Clone)]
pub(crate) struct Rec {
    /// Address of its length word.
    pub(crate) at: usize,
    /// Bytes of JSON.
    pub(crate) len: usize,
    /// The event's id.
    pub(crate) id: String,
    /// Written whole and not removed.
    pub(crate) waiting: bool,
}

/// The records in `bytes`, page by page (in address order), as far as each
/// page's length words hold.
pub(crate) fn records(bytes: &[u8]) -> Vec<Rec> {
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut out = Vec::new();
    for page in (0..bytes.len()).step_by(PAGE) {
        let mut off = 8;
        while off + 12 <= PAGE - 8 {
            let at = page + off;
            let lw = word(at);
            let len = (lw & 0xFFFF) as usize;
            if lw == u32::MAX
                || lw >> 16 != !lw & 0xFFFF
                || len == 0
                || off + 12 + len.div_ceil(4) * 4 > PAGE - 8
            {
                break;
            }
            let json = &bytes[at + 12..at + 12 + len];
            let text = String::from_utf8_lossy(json);
            let id = text
                .split("\"id\":\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_default()
                .to_string();
            let waiting = word(at + 4) != u32::MAX && word(at + 8) == u32::MAX;
            out.push(Rec {
                at,
                len,
                id,
                waiting,
            });
            off += 12 + len.div_ceil(4) * 4;
        }
    }
    out
}

/// The record in `bytes` that holds event `id`.
pub(crate) fn record_of(bytes: &[u8], id: &str) -> Rec {
    records(bytes)
        .into_iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no record holds {id}"))
}
