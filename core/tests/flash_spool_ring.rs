//! The flash spool's own format: a ring of NOR pages, records with a length,
//! a CRC-32 and a removal mark. These tests look at the flash itself:
//!
//! - damage (a flipped byte in an event, a broken length word, random
//!   mutations of a real image) is set aside and counted, never written
//!   out, and costs only what it destroyed;
//! - an event stored with a larger limit, and unusable ranges, are typed
//!   errors at open;
//! - the ring turns many times through outages and restarts with every
//!   event delivered once, in order, every page erased as often as the
//!   others (± 1), and no flash word written twice between erases, on
//!   flashes with words of 1 to 32 bytes.
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use common::flash::{
    CutFlash, EmOn, FLASH, Link, PAGE, Power, Ram, TestClock, check, emitter, open, reading,
};
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use ossa_events_core::Clock;
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::spool::{FlashSpool, SpoolError, SpoolMode, WhenFull};
use proptest::prelude::*;

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("ev-{i:04}")).collect()
}

fn delivered(link: &Link) -> Vec<String> {
    common::read(BatchFormat::JsonLines, &link.out.borrow()).ids
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A run with the link down: `n` events, all in flash; returns the flash.
fn stored(n: usize) -> (Ram, Vec<String>) {
    let power = Rc::new(Power::default());
    let link = Link {
        power: power.clone(),
        ..Link::default()
    };
    link.down.set(true);
    let mut em = open(
        Ram::new(),
        8,
        power,
        SpoolMode::Always,
        WhenFull::DropNewest,
        link,
        TestClock::default(),
    );
    let all = ids(n);
    for id in &all {
        em.emit(reading(id)).unwrap();
    }
    assert_eq!(em.spool().len(), n);
    let Ok((_link, spool)) = em.into_parts() else {
        panic!("every event is in flash")
    };
    (spool.into_flash().ram, all)
}

/// Reopens `ram` as after a reboot and drains it; the emitter and what the
/// link got.
fn reopen_and_drain(ram: Ram) -> (common::flash::Em, Link) {
    let power = Rc::new(Power::default());
    let link = Link {
        power: power.clone(),
        ..Link::default()
    };
    let mut em = open(
        ram,
        8,
        power,
        SpoolMode::Always,
        WhenFull::DropNewest,
        link.clone(),
        TestClock::default(),
    );
    let held = em.spool().len();
    em.flush().unwrap();
    assert!(em.spool().is_empty());
    assert_eq!(em.spool_counters().replayed, held as u64);
    (em, link)
}

#[test]
fn a_flipped_byte_in_one_event_sets_that_event_aside_and_the_rest_arrive_in_order() {
    let (mut ram, all) = stored(12);
    let at = find(ram.as_bytes(), b"ev-0005").unwrap();
    ram.as_bytes_mut()[at + 3] ^= 0x01;
    let (em, link) = reopen_and_drain(ram);
    assert_eq!(em.spool_counters().damaged, 1);
    let mut want = all.clone();
    want.remove(5);
    assert_eq!(delivered(&link), want);
}

#[test]
fn a_broken_length_word_loses_only_the_rest_of_its_page() {
    let (mut ram, all) = stored(12);
    // Where each event's JSON is, and so its page.
    let at: Vec<usize> = all
        .iter()
        .map(|id| find(ram.as_bytes(), id.as_bytes()).unwrap())
        .collect();
    // The first event of page 2 that has another after it on that page.
    let victim = (0..all.len() - 1)
        .find(|&i| at[i] / PAGE == 2 && at[i + 1] / PAGE == 2)
        .expect("page 2 holds two events");
    // Its record starts at the `{` before its id; the length word is the
    // first of the three header words before that.
    let json = ram.as_bytes()[..at[victim]]
        .iter()
        .rposition(|&b| b == b'{')
        .unwrap();
    ram.as_bytes_mut()[json - 12] ^= 0x40;
    let (em, link) = reopen_and_drain(ram);
    assert_eq!(em.spool_counters().damaged, 1);
    let want: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|&(i, _)| !(at[i] / PAGE == 2 && i >= victim))
        .map(|(_, id)| id.clone())
        .collect();
    assert!(want.len() >= all.len() - 3, "only page 2's rest is lost");
    assert_eq!(delivered(&link), want);
}

/// Erases (sets to 0xFF) both names of `page`, header and footer, and the
/// first byte of the length word of its first record, so nothing on the
/// page says it was in use but the records themselves.
fn unname(ram: &mut Ram, page: usize) {
    let bytes = ram.as_bytes_mut();
    bytes[page * PAGE..page * PAGE + 9].fill(0xFF);
    bytes[(page + 1) * PAGE - 8..(page + 1) * PAGE].fill(0xFF);
}

#[test]
fn a_page_that_lost_both_names_is_counted_when_it_is_the_newest() {
    let (mut ram, all) = stored(12);
    let pages: Vec<usize> = all
        .iter()
        .map(|id| find(ram.as_bytes(), id.as_bytes()).unwrap() / PAGE)
        .collect();
    let newest = *pages.last().unwrap();
    assert!(newest > 0, "the events fill more than one page");
    unname(&mut ram, newest);
    let (em, link) = reopen_and_drain(ram);
    // Its events cannot be told from the free pages after it: lost, and
    // counted (once: how many there were is not known).
    assert_eq!(em.spool_counters().damaged, 1);
    let want: Vec<String> = all
        .iter()
        .zip(&pages)
        .filter(|&(_, &p)| p != newest)
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(delivered(&link), want);
}

#[test]
fn a_spool_whose_only_page_lost_both_names_counts_its_events_lost() {
    let (mut ram, all) = stored(2);
    assert!(
        all.iter()
            .all(|id| find(ram.as_bytes(), id.as_bytes()).unwrap() < PAGE),
        "both events on page 0"
    );
    unname(&mut ram, 0);
    let (em, link) = reopen_and_drain(ram);
    assert_eq!(em.spool_counters().damaged, 1);
    assert!(delivered(&link).is_empty());
}

#[test]
fn an_event_stored_under_a_larger_limit_is_a_typed_error_at_open() {
    let (ram, _) = stored(3);
    let flash = CutFlash {
        ram,
        power: Rc::new(Power::default()),
    };
    let err = FlashSpool::<_, 128>::open(flash, 0..FLASH as u32).unwrap_err();
    assert!(
        matches!(err, SpoolError::StoredEventTooLarge { len } if len > 128),
        "{err:?}"
    );
}

#[test]
fn unusable_ranges_and_limits_are_typed_errors() {
    let flash = || CutFlash {
        ram: Ram::new(),
        power: Rc::new(Power::default()),
    };
    let page = PAGE as u32;
    for range in [
        4..2 * page + 4,        // not on a page boundary
        0..page,                // one page: no ring
        0..2 * page + 100,      // ends inside a page
        0..FLASH as u32 + page, // past the flash
        2 * page..page,         // backwards
    ] {
        let err = FlashSpool::<_, 512>::open(flash(), range.clone()).unwrap_err();
        assert_eq!(err, SpoolError::Range, "{range:?}");
    }
    // Not a multiple of the 4-byte word, and more than a page holds.
    let err = FlashSpool::<_, 510>::open(flash(), 0..FLASH as u32).unwrap_err();
    assert!(
        matches!(err, SpoolError::EventLimit { max: 996 }),
        "{err:?}"
    );
    let err = FlashSpool::<_, 1000>::open(flash(), 0..FLASH as u32).unwrap_err();
    assert!(
        matches!(err, SpoolError::EventLimit { max: 996 }),
        "{err:?}"
    );
    assert!(FlashSpool::<_, 996>::open(flash(), 0..FLASH as u32).is_ok());
    // Display names the problem.
    assert!(err.to_string().contains("at most 996 bytes"), "{err}");
}

// --- the ring over many turns, on flashes of every word size -------------------

/// A NOR flash with `WS`-byte writes and `RS`-byte reads that refuses to
/// write a byte that is not erased (no word is written twice between
/// erases) and counts the erases of each page.
#[derive(Debug)]
struct StrictFlash<const WS: usize, const RS: usize> {
    bytes: Vec<u8>,
    erases: Rc<RefCell<Vec<u32>>>,
    rewrites: Rc<Cell<u32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Refused;

impl NorFlashError for Refused {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::Other
    }
}

impl<const WS: usize, const RS: usize> ErrorType for StrictFlash<WS, RS> {
    type Error = Refused;
}

impl<const WS: usize, const RS: usize> ReadNorFlash for StrictFlash<WS, RS> {
    const READ_SIZE: usize = RS;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Refused> {
        let at = offset as usize;
        assert!(
            at.is_multiple_of(RS) && bytes.len().is_multiple_of(RS),
            "unaligned read"
        );
        bytes.copy_from_slice(&self.bytes[at..at + bytes.len()]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

impl<const WS: usize, const RS: usize> NorFlash for StrictFlash<WS, RS> {
    const WRITE_SIZE: usize = WS;
    const ERASE_SIZE: usize = PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Refused> {
        let (from, to) = (from as usize, to as usize);
        assert!(
            from.is_multiple_of(PAGE) && to.is_multiple_of(PAGE) && from < to,
            "bad erase"
        );
        self.bytes[from..to].fill(0xFF);
        for page in from / PAGE..to / PAGE {
            self.erases.borrow_mut()[page] += 1;
        }
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Refused> {
        let at = offset as usize;
        assert!(
            at.is_multiple_of(WS) && bytes.len().is_multiple_of(WS),
            "unaligned write"
        );
        let cells = &mut self.bytes[at..at + bytes.len()];
        if cells.iter().any(|&c| c != 0xFF) {
            self.rewrites.set(self.rewrites.get() + 1);
            return Err(Refused);
        }
        cells.copy_from_slice(bytes);
        Ok(())
    }
}

const RING_PAGES: usize = 6;

type StrictEm<const WS: usize, const RS: usize> = EmOn<StrictFlash<WS, RS>>;

fn strict_emitter<const WS: usize, const RS: usize>(
    flash: StrictFlash<WS, RS>,
    link: Link,
    clock: TestClock,
) -> StrictEm<WS, RS> {
    let spool = FlashSpool::open(flash, 0..(RING_PAGES * PAGE) as u32)
        .unwrap()
        .mode(SpoolMode::Always)
        .when_full(WhenFull::DropNewest);
    emitter(spool, link, clock)
}

/// 1 500 events; the link is down for 8 of every 30 (the flash holds the
/// outage); the device restarts every 97 events (the spool reopens on the
/// flash as it is). Returns the erases of each page.
fn many_turns<const WS: usize, const RS: usize>() -> Vec<u32> {
    let erases = Rc::new(RefCell::new(vec![0; RING_PAGES]));
    let rewrites = Rc::new(Cell::new(0));
    let mut flash = Some(StrictFlash::<WS, RS> {
        bytes: vec![0xFF; RING_PAGES * PAGE],
        erases: erases.clone(),
        rewrites: rewrites.clone(),
    });
    let link = Link::default();
    let clock = TestClock::default();
    let all = ids(1500);
    let mut em = None;
    for (i, id) in all.iter().enumerate() {
        if i % 97 == 0 {
            if let Some(old) = em.take() {
                let mut old: StrictEm<WS, RS> = old;
                // A restart: what was only in RAM is gone.
                old.discard_pending();
                let Ok((_, spool)) = old.into_parts() else {
                    panic!("nothing left in RAM")
                };
                flash = Some(spool.into_flash());
            }
            em = Some(strict_emitter(
                flash.take().unwrap(),
                link.clone(),
                clock.clone(),
            ));
        }
        let e = em.as_mut().unwrap();
        link.down.set(i % 30 < 8);
        e.emit(reading(id))
            .unwrap_or_else(|err| panic!("W{WS}/R{RS}: emit {id}: {err}"));
        clock.0.set(clock.0.get() + 300);
        let _ = e.poll(clock.now());
    }
    let mut e = em.unwrap();
    link.down.set(false);
    e.flush().unwrap();
    assert!(e.spool().is_empty());
    assert_eq!(e.spool_counters().flash_errors, 0, "W{WS}/R{RS}");
    assert_eq!(e.spool_counters().damaged, 0, "W{WS}/R{RS}");
    assert_eq!(rewrites.get(), 0, "W{WS}/R{RS}: a word was written twice");
    assert_eq!(delivered(&link), all, "W{WS}/R{RS}: once each, in order");
    let erases = erases.borrow().clone();
    let (min, max) = (*erases.iter().min().unwrap(), *erases.iter().max().unwrap());
    assert!(min >= 20, "W{WS}/R{RS}: the ring turned: {erases:?}");
    assert!(max - min <= 1, "W{WS}/R{RS}: uneven wear: {erases:?}");
    erases
}

#[test]
fn the_ring_turns_through_outages_and_restarts_evenly_on_every_word_size() {
    for erases in [
        many_turns::<1, 1>(),
        many_turns::<4, 4>(),
        many_turns::<8, 8>(),
        many_turns::<16, 1>(),
        many_turns::<32, 32>(),
    ] {
        eprintln!("erases per page: {erases:?}");
    }
}

// --- damaged images ----------------------------------------------------------------

#[derive(Debug, Clone)]
enum Damage {
    /// XOR a byte.
    Flip(usize, u8),
    /// Set bits of a byte (NOR cells that lost their charge read as 1).
    Raise(usize, u8),
    /// Zero a run of bytes (bits a program left cleared).
    Zero(usize, usize),
    /// Set a run to 0xFF (an erase cut short).
    Erase(usize, usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (0..FLASH, 1..=255u8).prop_map(|(at, x)| Damage::Flip(at, x)),
        (0..FLASH, 1..=255u8).prop_map(|(at, x)| Damage::Raise(at, x)),
        (0..FLASH, 1..64usize).prop_map(|(at, n)| Damage::Zero(at, n)),
        // (Shorter than an event: an erase that wipes a whole record,
        // header and all, leaves nothing to tell it was there.)
        (0..FLASH, 1..200usize).prop_map(|(at, n)| Damage::Erase(at, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any damage to a real image: the spool opens (or names an event too
    /// large), and what it writes out is whole events that were stored, in
    /// order, each once; then it takes new events as before. When the
    /// damage only sets bits (what NOR cells do as they lose charge, and
    /// what an erase cut short leaves), no event goes missing uncounted.
    #[test]
    fn any_damage_opens_and_writes_out_only_whole_stored_events(
        n in 1usize..20,
        damages in prop::collection::vec(damage(), 1..6),
    ) {
        let (mut ram, all) = stored(n);
        for d in &damages {
            let bytes = ram.as_bytes_mut();
            match *d {
                Damage::Flip(at, x) => bytes[at] ^= x,
                Damage::Raise(at, x) => bytes[at] |= x,
                Damage::Zero(at, len) => bytes[at..(at + len).min(FLASH)].fill(0),
                Damage::Erase(at, len) => bytes[at..(at + len).min(FLASH)].fill(0xFF),
            }
        }
        let power = Rc::new(Power::default());
        let flash = CutFlash { ram, power: power.clone() };
        let spool = match FlashSpool::<_, 512>::open(flash, 0..FLASH as u32) {
            Ok(s) => s,
            // A damaged length that passes its complement check can only
            // claim more than the limit.
            Err(SpoolError::StoredEventTooLarge { len }) => {
                prop_assert!(len > 512);
                return Ok(());
            }
            Err(e) => panic!("open: {e:?}"),
        };
        // (Opening set aside what it found damaged: counted there.)
        let found = spool.damaged();
        let ram = spool.into_flash().ram;
        let (mut em, link) = reopen_and_drain(ram);
        let got = delivered(&link);
        check(&link.out.borrow(), &all, &[], 0, "damaged image");
        prop_assert!(got.len() <= n);
        let sets_bits = damages
            .iter()
            .all(|d| matches!(d, Damage::Raise(..) | Damage::Erase(..)));
        if sets_bits && got.len() < n {
            prop_assert!(
                found + em.spool_counters().damaged > 0,
                "{} of {n} events missing, none counted", n - got.len()
            );
        }
        // New events still go through the damaged ring.
        link.down.set(true);
        let more = ids(n + 10);
        for id in &more[n..] {
            em.emit(reading(id)).unwrap();
        }
        link.down.set(false);
        em.flush().unwrap();
        let after = delivered(&link);
        prop_assert_eq!(&after[got.len()..], &more[n..]);
    }

    /// Flips inside events' JSON only: exactly those events are set aside
    /// (counted as damaged) and every other one arrives, in order.
    #[test]
    fn flips_in_event_bodies_cost_exactly_those_events(
        n in 2usize..20,
        hit in prop::collection::btree_set(0usize..20, 1..5),
        x in 1..=255u8,
    ) {
        let (mut ram, all) = stored(n);
        let hit: Vec<usize> = hit.into_iter().filter(|&i| i < n).collect();
        for &i in &hit {
            // (The `:` before the id: a flip in the id could make another.)
            let at = find(ram.as_bytes(), all[i].as_bytes()).unwrap();
            ram.as_bytes_mut()[at - 2] ^= x;
        }
        let (em, link) = reopen_and_drain(ram);
        prop_assert_eq!(em.spool_counters().damaged, hit.len() as u64);
        let want: Vec<String> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| !hit.contains(i))
            .map(|(_, id)| id.clone())
            .collect();
        prop_assert_eq!(delivered(&link), want);
    }
}

// --- a driver that fails one write (the power stays on) ---------------------------

/// A flash whose write number `fail_at` programs part of its bits (those
/// of `mask` stay set) and then reports an error.
struct Flaky {
    ram: Ram,
    ops: Rc<Cell<u64>>,
    fail_at: Rc<Cell<Option<u64>>>,
    mask: u8,
}

impl ErrorType for Flaky {
    type Error = Refused;
}

impl ReadNorFlash for Flaky {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Refused> {
        self.ram.read(offset, bytes).map_err(|_| Refused)
    }
    fn capacity(&self) -> usize {
        FLASH
    }
}

impl NorFlash for Flaky {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Refused> {
        self.ops.set(self.ops.get() + 1);
        self.ram.erase(from, to).map_err(|_| Refused)
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Refused> {
        let k = self.ops.get();
        self.ops.set(k + 1);
        if self.fail_at.get() == Some(k) {
            let partial: Vec<u8> = bytes.iter().map(|b| b | self.mask).collect();
            self.ram.write(offset, &partial).map_err(|_| Refused)?;
            return Err(Refused);
        }
        self.ram.write(offset, bytes).map_err(|_| Refused)
    }
}

type Shared<T> = Rc<Cell<T>>;

/// An `Always` emitter on a [`Flaky`] flash with its link down; the
/// flash's write count and the write to fail, the link, the clock.
fn flaky_emitter(
    mask: u8,
) -> (
    EmOn<Flaky>,
    Shared<u64>,
    Shared<Option<u64>>,
    Link,
    TestClock,
) {
    let ops = Rc::new(Cell::new(0));
    let fail_at = Rc::new(Cell::new(None));
    let f = Flaky {
        ram: Ram::new(),
        ops: ops.clone(),
        fail_at: fail_at.clone(),
        mask,
    };
    let spool = FlashSpool::open(f, 0..FLASH as u32)
        .unwrap()
        .mode(SpoolMode::Always);
    let link = Link::default();
    let clock = TestClock::default();
    let em = emitter(spool, link.clone(), clock.clone());
    link.down.set(true);
    (em, ops, fail_at, link, clock)
}

#[test]
fn a_write_that_fails_inside_a_record_loses_and_repeats_nothing() {
    // The CRC word of the third event fails: half programmed (0xF0), or
    // written whole before the driver reports the error (0x00).
    for mask in [0xF0u8, 0x00] {
        let (mut em, ops, fail_at, link, clock) = flaky_emitter(mask);
        let all = ids(12);
        for (i, id) in all.iter().enumerate().take(8) {
            // Writes of a record: length word, JSON, CRC word.
            fail_at.set((i == 2).then(|| ops.get() + 2));
            em.emit(reading(id)).unwrap();
        }
        fail_at.set(None);
        assert_eq!(em.spool_counters().flash_errors, 1, "mask {mask:#x}");
        link.down.set(false);
        em.flush().unwrap();
        for id in &all[8..] {
            em.emit(reading(id)).unwrap();
        }
        em.flush().unwrap();
        assert_eq!(em.spool().len(), 0, "mask {mask:#x}");
        assert_eq!(em.pending(), 0, "mask {mask:#x}");
        // A restart finds nothing waiting.
        let Ok((_, spool)) = em.into_parts() else {
            panic!("mask {mask:#x}: nothing pending")
        };
        let flash = spool.into_flash();
        let spool = FlashSpool::open(flash, 0..FLASH as u32).unwrap();
        assert_eq!(spool.len(), 0, "mask {mask:#x}");
        let mut em = emitter(spool, link.clone(), clock.clone());
        em.flush().unwrap();
        assert_eq!(delivered(&link), all, "mask {mask:#x}: each once, in order");
    }
}

#[test]
fn a_removal_mark_that_fails_half_written_leaves_nothing_waiting() {
    let (mut em, ops, fail_at, link, clock) = flaky_emitter(0xF0);
    let all = ids(3);
    for id in &all {
        em.emit(reading(id)).unwrap();
    }
    link.down.set(false);
    // The next flash write is the first removal mark, after the write out.
    fail_at.set(Some(ops.get()));
    let _ = em.flush();
    fail_at.set(None);
    let _ = em.flush();
    assert_eq!(delivered(&link), all);
    assert_eq!(em.spool().len(), 0);
    assert_eq!(em.pending(), 0);
    assert_eq!(
        em.next_flush_in_ms(clock.now()),
        None,
        "nothing to poll for"
    );
}
