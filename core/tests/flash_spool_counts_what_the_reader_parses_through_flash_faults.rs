//! The flash spool's emitter against a scripted writer (as in
//! `flash_spool_counts_what_the_reader_parses_through_a_scripted_writer`)
//! on a flash whose operations fail now and then on a script of their own
//! (a write or erase that does nothing and reports an error, a read that
//! fails): after every step what the reader parses is what `delivered`
//! counts, each event at most once, and every accepted event is delivered,
//! pending or evicted; once both work again everything goes out. With
//! writers that pass bytes on before failing (the documented source of
//! repeats), nothing is lost.
//!
//! Not covered: a flash write that reports an error after programming
//! (then a record can be whole in flash while its event also waits in RAM).
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use common::{Act, FlushAct, Scripted, read};
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::emitter::{Config, EmitError};
use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter, SpoolMode, WhenFull};
use ossa_events_core::{Clock, Event, RandomIds, Timestamp};
use proptest::prelude::*;

#[derive(Clone, Default)]
struct TestClock(Rc<Cell<i64>>);
impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(1_795_608_000_000 + self.0.get()).unwrap()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FAct {
    Ok,
    /// Fails, nothing done.
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FErr;
impl NorFlashError for FErr {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::Other
    }
}

const PAGE: usize = 1024;

struct FFlash<const BYTES: usize> {
    ram: RamFlash<BYTES, PAGE>,
    script: Rc<RefCell<VecDeque<FAct>>>,
    reads_fail: Rc<RefCell<VecDeque<bool>>>,
}
impl<const BYTES: usize> FFlash<BYTES> {
    fn next(&self) -> FAct {
        self.script.borrow_mut().pop_front().unwrap_or(FAct::Ok)
    }
}
impl<const BYTES: usize> ErrorType for FFlash<BYTES> {
    type Error = FErr;
}
impl<const BYTES: usize> ReadNorFlash for FFlash<BYTES> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FErr> {
        if self.reads_fail.borrow_mut().pop_front().unwrap_or(false) {
            return Err(FErr);
        }
        self.ram.read(offset, bytes).map_err(|_| FErr)
    }
    fn capacity(&self) -> usize {
        BYTES
    }
}
impl<const BYTES: usize> NorFlash for FFlash<BYTES> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), FErr> {
        match self.next() {
            FAct::Fail => Err(FErr),
            FAct::Ok => self.ram.erase(from, to).map_err(|_| FErr),
        }
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FErr> {
        match self.next() {
            FAct::Fail => Err(FErr),
            FAct::Ok => self.ram.write(offset, bytes).map_err(|_| FErr),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Emit(usize),
    Poll(i64),
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..380).prop_map(Op::Emit),
        2 => (0i64..1500).prop_map(Op::Poll),
        1 => Just(Op::Flush),
    ]
}

fn write_act_passing() -> impl Strategy<Value = Act> {
    prop_oneof![
        5 => Just(Act::Accept),
        3 => (1usize..300).prop_map(Act::Short),
        3 => (0usize..400).prop_map(|passed| Act::Fail { passed }),
        1 => Just(Act::Zero),
    ]
}

fn flush_act_passing() -> impl Strategy<Value = FlushAct> {
    prop_oneof![5 => Just(FlushAct::Ok), 1 => Just(FlushAct::FailLossy), 1 => Just(FlushAct::FailPassing)]
}

fn write_act() -> impl Strategy<Value = Act> {
    prop_oneof![
        5 => Just(Act::Accept),
        3 => (1usize..300).prop_map(Act::Short),
        3 => Just(Act::Fail { passed: 0 }),
        1 => Just(Act::Zero),
    ]
}

fn flush_act() -> impl Strategy<Value = FlushAct> {
    prop_oneof![5 => Just(FlushAct::Ok), 1 => Just(FlushAct::FailLossy)]
}

fn fact() -> impl Strategy<Value = FAct> {
    prop_oneof![12 => Just(FAct::Ok), 1 => Just(FAct::Fail)]
}

#[allow(clippy::too_many_arguments)]
fn run<const FLASH: usize, const B: usize>(
    format: BatchFormat,
    batch_size: usize,
    mode: SpoolMode,
    when_full: WhenFull,
    ops: &[Op],
    writes: &[Act],
    flushes: &[FlushAct],
    facts: &[FAct],
    rfails: &[bool],
) {
    run_p::<FLASH, B>(
        format, batch_size, mode, when_full, ops, writes, flushes, facts, rfails, false,
    )
}

#[allow(clippy::too_many_arguments)]
fn run_p<const FLASH: usize, const B: usize>(
    format: BatchFormat,
    batch_size: usize,
    mode: SpoolMode,
    when_full: WhenFull,
    ops: &[Op],
    writes: &[Act],
    flushes: &[FlushAct],
    facts: &[FAct],
    rfails: &[bool],
    passing: bool,
) {
    let w = Scripted::new(writes, flushes);
    let clock = TestClock::default();
    let script = Rc::new(RefCell::new(VecDeque::new()));
    let reads_fail = Rc::new(RefCell::new(VecDeque::new()));
    let flash = FFlash::<FLASH> {
        ram: RamFlash::new(),
        script: script.clone(),
        reads_fail: reads_fail.clone(),
    };
    let spool = FlashSpool::<_, 512>::open(flash, 0..FLASH as u32)
        .unwrap()
        .mode(mode)
        .when_full(when_full);
    script.borrow_mut().extend(facts.iter().copied());
    reads_fail.borrow_mut().extend(rfails.iter().copied());
    let config = Config::new("/dev/prop")
        .batch_size(batch_size)
        .flush_interval_ms(1000)
        .format(format);
    let ids: RandomIds<fn(&mut [u8; 16])> = RandomIds(|b| b.fill(9));
    let mut em: SpoolEmitter<'static, Scripted, FFlash<FLASH>, _, TestClock, 4, B, 512> =
        SpoolEmitter::new(config, w.clone(), spool, ids, clock.clone());
    let mut accepted: Vec<String> = Vec::new();
    let mut refused = 0u64;
    let mut next = 0usize;
    let check = |em: &SpoolEmitter<'static, Scripted, FFlash<FLASH>, _, TestClock, 4, B, 512>,
                 accepted: &[String],
                 refused: u64,
                 stage: &str| {
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
        assert_eq!(
            c.emitted,
            c.delivered + em.pending() as u64 + s.evicted + s.damaged,
            "{stage}: every accepted event delivered, pending, evicted or damaged: {c:?} {s:?} pending {} spool {}",
            em.pending(),
            em.spool().len()
        );
        let wire = w.wire.borrow();
        let r = read(format, &wire.wire);
        if format == BatchFormat::JsonLines {
            for bad in &r.unparsed {
                let text = String::from_utf8_lossy(bad);
                assert!(
                    text.matches("specversion").count() <= 1,
                    "{stage}: glued: {text}"
                );
            }
        }
        if passing {
            let uniq: std::collections::HashSet<_> = r.ids.iter().collect();
            assert!(
                uniq.len() as u64
                    <= c.delivered + em.pending() as u64 + em.spool_counters().evicted,
                "{stage}: more arrived than delivered+pending: {:?} {c:?}",
                r.ids
            );
            for id in &r.ids {
                assert!(accepted.contains(id), "{stage}: {id} never accepted");
            }
            return;
        }
        assert_eq!(
            r.ids.len() as u64,
            c.delivered,
            "{stage}: the reader parses what was counted delivered: {:?} {c:?} {s:?}\n{}",
            r.ids,
            String::from_utf8_lossy(&wire.wire)
        );
        let mut seen = std::collections::HashSet::new();
        for id in &r.ids {
            assert!(seen.insert(id), "{stage}: {id} twice: {:?}", r.ids);
            assert!(accepted.contains(id), "{stage}: {id} never accepted");
        }
    };
    for (k, op) in ops.iter().enumerate() {
        match *op {
            Op::Emit(len) => {
                next += 1;
                let id = format!("e{next}");
                let subject = "s".repeat(len);
                match em.emit(Event::builder().id(&id).ty("t").subject(&subject)) {
                    Ok(()) => accepted.push(id),
                    Err(EmitError::SpoolFull) => refused += 1,
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
        check(&em, &accepted, refused, &format!("step {k} {op:?}"));
    }
    w.writes.borrow_mut().clear();
    w.flushes.borrow_mut().clear();
    script.borrow_mut().clear();
    reads_fail.borrow_mut().clear();
    for _ in 0..3 {
        let _ = em.flush();
    }
    check(&em, &accepted, refused, "end");
    assert_eq!(em.pending(), 0, "end: pending; spool {:?}", em.spool());
    if passing {
        let r = read(format, &w.wire.borrow().wire);
        let uniq: std::collections::HashSet<_> = r.ids.iter().collect();
        let s = em.spool_counters();
        assert!(
            uniq.len() as u64 + s.evicted >= accepted.len() as u64,
            "end: lost: {:?} accepted {accepted:?} {s:?}",
            r.ids
        );
        if when_full == WhenFull::DropNewest {
            for id in &accepted {
                assert!(uniq.contains(id), "end: {id} lost: {:?}", r.ids);
            }
        }
    }
}

fn format() -> impl Strategy<Value = BatchFormat> {
    prop_oneof![Just(BatchFormat::JsonLines), Just(BatchFormat::JsonBatch)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn spool_with_passing_writers_and_flash_faults(
        format in format(),
        batch_size in 1usize..6,
        always in any::<bool>(),
        drop_oldest in any::<bool>(),
        small in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..120),
        writes in proptest::collection::vec(write_act_passing(), 0..80),
        flushes in proptest::collection::vec(flush_act_passing(), 0..20),
        facts in proptest::collection::vec(fact(), 0..200),
        rfails in proptest::collection::vec(prop_oneof![30 => Just(false), 1 => Just(true)], 0..400),
    ) {
        let mode = if always { SpoolMode::Always } else { SpoolMode::WhenDown };
        let when_full = if drop_oldest { WhenFull::DropOldest } else { WhenFull::DropNewest };
        if small {
            run_p::<2048, 2048>(format, batch_size, mode, when_full, &ops, &writes, &flushes, &facts, &rfails, true);
        } else {
            run_p::<4096, 1024>(format, batch_size, mode, when_full, &ops, &writes, &flushes, &facts, &rfails, true);
        }
    }

    #[test]
    fn spool_with_transient_flash_faults(
        format in format(),
        batch_size in 1usize..6,
        always in any::<bool>(),
        drop_oldest in any::<bool>(),
        small in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..120),
        writes in proptest::collection::vec(write_act(), 0..80),
        flushes in proptest::collection::vec(flush_act(), 0..20),
        facts in proptest::collection::vec(fact(), 0..200),
        rfails in proptest::collection::vec(prop_oneof![30 => Just(false), 1 => Just(true)], 0..400),
    ) {
        let mode = if always { SpoolMode::Always } else { SpoolMode::WhenDown };
        let when_full = if drop_oldest { WhenFull::DropOldest } else { WhenFull::DropNewest };
        if small {
            run::<2048, 2048>(format, batch_size, mode, when_full, &ops, &writes, &flushes, &facts, &rfails);
        } else {
            run::<4096, 1024>(format, batch_size, mode, when_full, &ops, &writes, &flushes, &facts, &rfails);
        }
    }
}
