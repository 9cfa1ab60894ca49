//! The flash spool (feature `flash-spool`) under power cuts at any byte:
//! a cut leaves the bytes before it programmed, half the bits of the byte
//! it hits, and nothing after; an erase it cuts short leaves one of five
//! patterns (a third erased, the second half erased, a third pre-programmed
//! to `0x00`, all `0x00`, some cells erased). Cuts also hit the `open` after
//! a reboot. On flashes with 4-, 8- and 16-byte words and 1-, 4-, 8-byte
//! reads (alignment enforced), in both modes and both policies, with events
//! of many sizes: first arrivals come in emit order, nothing arrives that
//! was not emitted, every accepted event arrives unless it was only in RAM
//! (`WhenDown`) or evicted, repeats stay within a batch per cut, and a run
//! with no cut never programs a word twice between erases. Any image of
//! erased, `0x00`, random or plausible-looking pages opens (or names an event
//! too large), drains and takes new events.
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use common::flash::{Link, PAGE, TestClock, check, emitter, reading};
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use ossa_events_core::Clock;
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::emitter::EmitError;
use ossa_events_core::spool::{FlashSpool, SpoolError, SpoolMode, WhenFull};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Off;

impl NorFlashError for Off {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::Other
    }
}

#[derive(Debug, Default)]
struct Power {
    /// Bytes (an erase counts one) that still go through before the cut.
    budget: Cell<Option<u64>>,
    off: Cell<bool>,
    /// How an erase cut short leaves its page.
    erase_style: Cell<u8>,
    rewrites: Cell<u64>,
    /// The link's power: the whole device goes off.
    link: Rc<common::flash::Power>,
}

impl Power {
    fn cut(&self) {
        self.off.set(true);
        self.link.off.set(true);
    }
}

struct ByteFlash<const WS: usize, const RS: usize> {
    bytes: Rc<RefCell<Vec<u8>>>,
    power: Rc<Power>,
}

impl<const WS: usize, const RS: usize> ErrorType for ByteFlash<WS, RS> {
    type Error = Off;
}

impl<const WS: usize, const RS: usize> ReadNorFlash for ByteFlash<WS, RS> {
    const READ_SIZE: usize = RS;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Off> {
        if self.power.off.get() {
            return Err(Off);
        }
        let at = offset as usize;
        assert!(
            at.is_multiple_of(RS) && bytes.len().is_multiple_of(RS),
            "unaligned read"
        );
        bytes.copy_from_slice(&self.bytes.borrow()[at..at + bytes.len()]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.bytes.borrow().len()
    }
}

impl<const WS: usize, const RS: usize> NorFlash for ByteFlash<WS, RS> {
    const WRITE_SIZE: usize = WS;
    const ERASE_SIZE: usize = PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Off> {
        if self.power.off.get() {
            return Err(Off);
        }
        let (from, to) = (from as usize, to as usize);
        assert!(
            from.is_multiple_of(PAGE) && to.is_multiple_of(PAGE) && from < to,
            "bad erase"
        );
        match self.power.budget.get() {
            Some(0) => {
                self.power.cut();
                let mut all = self.bytes.borrow_mut();
                let page = &mut all[from..to];
                let n = page.len();
                match self.power.erase_style.get() % 5 {
                    0 => page[..n / 3].fill(0xFF),
                    1 => page[n / 2..].fill(0xFF),
                    2 => page[..n / 3].fill(0x00), // pre-programmed to 0, then cut
                    3 => page.fill(0x00),
                    _ => {
                        // Some cells erased, others not.
                        for (i, b) in page.iter_mut().enumerate() {
                            *b |= (i as u8).wrapping_mul(37) & 0x5A;
                        }
                    }
                }
                return Err(Off);
            }
            Some(b) => self.power.budget.set(Some(b - 1)),
            None => {}
        }
        self.bytes.borrow_mut()[from..to].fill(0xFF);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Off> {
        if self.power.off.get() {
            return Err(Off);
        }
        let at = offset as usize;
        assert!(
            at.is_multiple_of(WS) && bytes.len().is_multiple_of(WS),
            "unaligned write"
        );
        let mut all = self.bytes.borrow_mut();
        let cells = &mut all[at..at + bytes.len()];
        if cells
            .iter()
            .zip(bytes)
            .any(|(&c, &b)| c != 0xFF && b != 0xFF)
        {
            self.power.rewrites.set(self.power.rewrites.get() + 1);
        }
        let n = match self.power.budget.get() {
            Some(b) if (b as usize) < bytes.len() => b as usize,
            Some(b) => {
                self.power.budget.set(Some(b - bytes.len() as u64));
                bytes.len()
            }
            None => bytes.len(),
        };
        for (c, b) in cells.iter_mut().zip(bytes).take(n) {
            *c &= *b;
        }
        if n < bytes.len() {
            // The byte being programmed: half its bits.
            cells[n] &= bytes[n] | 0xF0;
            self.power.cut();
            return Err(Off);
        }
        Ok(())
    }
}

const PAGES: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Emit(usize),
    LinkDown,
    LinkUp,
    Tick(i64),
    Poll,
    Flush,
    /// The power goes off after this many more bytes (erases count one).
    CutAfter(u64),
    /// The power goes off now (RAM is lost).
    CutNow,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1usize..300).prop_map(Op::Emit),
        1 => Just(Op::LinkDown),
        1 => Just(Op::LinkUp),
        2 => (1i64..1500).prop_map(Op::Tick),
        2 => Just(Op::Poll),
        1 => Just(Op::Flush),
        1 => Just(Op::CutNow),
        2 => (0u64..1500).prop_map(Op::CutAfter),
    ]
}

fn run<const WS: usize, const RS: usize>(
    ops: &[Op],
    open_cuts: &[u64],
    erase_style: u8,
    drop_oldest: bool,
    mode: SpoolMode,
) -> Result<(), TestCaseError> {
    let when_full = if drop_oldest {
        WhenFull::DropOldest
    } else {
        WhenFull::DropNewest
    };
    let out = Link::default().out;
    let down = Rc::new(Cell::new(false));
    let clock = TestClock::default();
    let bytes = Rc::new(RefCell::new(vec![0xFF; PAGES * PAGE]));
    let mut open_cuts = open_cuts.iter();
    let mut rewrites = 0;
    // Opens, with perhaps a cut in the open itself; returns the emitter.
    let mut boot = |bytes: &Rc<RefCell<Vec<u8>>>, rewrites: &mut u64| {
        loop {
            let power = Rc::new(Power::default());
            power.erase_style.set(erase_style);
            power.budget.set(open_cuts.next().copied());
            let link = Link {
                out: out.clone(),
                down: down.clone(),
                power: power.link.clone(),
            };
            // The bytes are shared: a cut in the open leaves them as it found them.
            let flash = ByteFlash::<WS, RS> {
                bytes: bytes.clone(),
                power: power.clone(),
            };
            match FlashSpool::<_, 512>::open(flash, 0..(PAGES * PAGE) as u32) {
                Ok(s) => {
                    power.budget.set(None);
                    let em = emitter(s.mode(mode).when_full(when_full), link, clock.clone());
                    return (em, power);
                }
                Err(SpoolError::Flash(Off)) => {
                    *rewrites += power.rewrites.get();
                }
                Err(e) => panic!("open: {e:?}"),
            }
        }
    };
    let (mut em, mut power) = boot(&bytes, &mut rewrites);

    let mut all = Vec::new();
    let mut accepted = Vec::new();
    let mut cuts = 0usize;
    let mut dropped = 0u64;
    let mut refused = 0u64;
    let mut lost_allowed = 0u64;
    let mut n = 0;
    for op in ops {
        let ram_only = (em.pending() - em.spool().len()) as u64;
        let cut = match *op {
            Op::Emit(len) => {
                let id = format!("ev-{n:04}");
                n += 1;
                all.push(id.clone());
                let subject = "s".repeat(len);
                let r = em.emit(reading(&id).subject(&subject));
                if !power.off.get() {
                    match r {
                        Ok(()) => accepted.push(id),
                        Err(EmitError::SpoolFull) => refused += 1,
                        Err(EmitError::TooLarge) => {}
                        Err(e) => prop_assert!(false, "emit: {e}"),
                    }
                }
                power.off.get()
            }
            Op::LinkDown => {
                down.set(true);
                false
            }
            Op::LinkUp => {
                down.set(false);
                false
            }
            Op::Tick(ms) => {
                clock.0.set(clock.0.get() + ms);
                false
            }
            Op::Poll => {
                let _ = em.poll(clock.now());
                power.off.get()
            }
            Op::Flush => {
                let _ = em.flush();
                power.off.get()
            }
            Op::CutAfter(b) => {
                power.budget.set(Some(b));
                false
            }
            Op::CutNow => true,
        };
        if cut {
            lost_allowed += ram_only;
            if power.off.get() && drop_oldest {
                lost_allowed += 1;
            }
            cuts += 1;
            dropped += em.counters().dropped;
            rewrites += power.rewrites.get();
            drop(em);
            (em, power) = boot(&bytes, &mut rewrites);
        }
    }
    power.budget.set(None);
    down.set(false);
    em.flush().unwrap();
    prop_assert_eq!(em.pending(), 0);
    dropped += em.counters().dropped;
    rewrites += power.rewrites.get();
    let dropped = dropped - refused;

    let stream = out.borrow().clone();
    check(&stream, &all, &[], 4 * cuts, "byte cuts");
    let got: HashSet<String> = common::read(BatchFormat::JsonLines, &stream)
        .ids
        .into_iter()
        .collect();
    let missing: Vec<&String> = accepted.iter().filter(|id| !got.contains(*id)).collect();
    prop_assert!(
        missing.len() as u64 <= dropped + lost_allowed,
        "missing {:?} > dropped {} + {}",
        missing,
        dropped,
        lost_allowed
    );
    prop_assert!(
        cuts > 0 || rewrites == 0,
        "a word programmed twice between erases: {}",
        rewrites
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_cut_at_any_byte_on_4_byte_words_loses_reorders_or_invents_nothing(ops in proptest::collection::vec(op(), 1..150), oc in proptest::collection::vec(0u64..200, 0..3), es in 0u8..5, d in any::<bool>(), a in any::<bool>()) {
        run::<4, 1>(&ops, &oc, es, d, if a { SpoolMode::Always } else { SpoolMode::WhenDown })?;
    }
    #[test]
    fn a_cut_at_any_byte_on_8_byte_words_loses_reorders_or_invents_nothing(ops in proptest::collection::vec(op(), 1..150), oc in proptest::collection::vec(0u64..200, 0..3), es in 0u8..5, d in any::<bool>(), a in any::<bool>()) {
        run::<8, 8>(&ops, &oc, es, d, if a { SpoolMode::Always } else { SpoolMode::WhenDown })?;
    }
    #[test]
    fn a_cut_at_any_byte_on_16_byte_words_loses_reorders_or_invents_nothing(ops in proptest::collection::vec(op(), 1..150), oc in proptest::collection::vec(0u64..200, 0..3), es in 0u8..5, d in any::<bool>(), a in any::<bool>()) {
        run::<16, 4>(&ops, &oc, es, d, if a { SpoolMode::Always } else { SpoolMode::WhenDown })?;
    }
}

fn garbage_open<const WS: usize, const RS: usize>(img: Vec<u8>) -> Result<(), TestCaseError> {
    let power = Rc::new(Power::default());
    let link = Link {
        power: power.link.clone(),
        ..Link::default()
    };
    let flash = ByteFlash::<WS, RS> {
        bytes: Rc::new(RefCell::new(img)),
        power: power.clone(),
    };
    let spool = match FlashSpool::<_, 512>::open(flash, 0..(PAGES * PAGE) as u32) {
        Ok(s) => s,
        Err(SpoolError::StoredEventTooLarge { .. }) => return Ok(()),
        Err(e) => panic!("{e:?}"),
    };
    let clock = TestClock::default();
    let mut em = emitter(spool.mode(SpoolMode::Always), link.clone(), clock.clone());
    em.flush().unwrap();
    prop_assert_eq!(
        em.pending(),
        0,
        "flush with a working link empties the spool"
    );
    prop_assert_eq!(em.next_flush_in_ms(clock.now()), None);
    for i in 0..30 {
        em.emit(reading(&format!("new-{i}"))).unwrap();
        let _ = em.poll(clock.now());
    }
    em.flush().unwrap();
    prop_assert_eq!(em.pending(), 0);
    let got = common::read(BatchFormat::JsonLines, &link.out.borrow()).ids;
    let new: Vec<&String> = got.iter().filter(|i| i.starts_with("new-")).collect();
    prop_assert_eq!(new.len(), 30);
    Ok(())
}

fn image() -> impl Strategy<Value = Vec<u8>> {
    let page = prop_oneof![
        Just(vec![0xFFu8; PAGE]),
        Just(vec![0x00u8; PAGE]),
        proptest::collection::vec(any::<u8>(), PAGE),
        // A header that names the page, then garbage.
        (
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), PAGE - 8)
        )
            .prop_map(|(s, rest)| {
                let mut v = s.to_le_bytes().to_vec();
                v.extend((!s).to_le_bytes());
                v.extend(rest);
                v
            }),
        // Named, then plausible record headers with garbage.
        (
            0u32..4,
            proptest::collection::vec((1u32..600, any::<u32>(), any::<bool>()), 1..6)
        )
            .prop_map(|(s, recs)| {
                let mut v = s.to_le_bytes().to_vec();
                v.extend((!s).to_le_bytes());
                for (len, crc, removed) in recs {
                    v.extend((len | (!len << 16)).to_le_bytes());
                    v.extend(crc.to_le_bytes());
                    v.extend(if removed { [0u8; 4] } else { [0xFF; 4] });
                    v.extend(std::iter::repeat_n(b'x', len.div_ceil(4) as usize * 4));
                }
                v.resize(PAGE, 0xFF);
                v.truncate(PAGE);
                v
            }),
    ];
    proptest::collection::vec(page, PAGES).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn any_image_of_erased_zeroed_random_or_plausible_pages_opens_and_drains(img in image()) {
        garbage_open::<4, 1>(img)?;
    }
}
