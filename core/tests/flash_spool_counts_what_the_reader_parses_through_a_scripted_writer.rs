//! The flash spool's emitter against a scripted writer (short writes,
//! `Ok(0)`, failed writes, failed flushes), in both framings, any batch
//! size, both modes and both policies, on a flash that holds more events
//! than the batch and on one that holds fewer: after every step what the
//! reader parses is what `delivered` counts, in emit order, once; every
//! accepted event is delivered, pending or evicted (counted dropped).
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::{Act, FlushAct, Scripted, read};
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

type EmOf<const FLASH: usize, const B: usize> = SpoolEmitter<
    'static,
    Scripted,
    RamFlash<FLASH, 1024>,
    RandomIds<fn(&mut [u8; 16])>,
    TestClock,
    4,
    B,
    512,
>;

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

fn run(
    format: BatchFormat,
    batch_size: usize,
    mode: SpoolMode,
    when_full: WhenFull,
    ops: &[Op],
    writes: &[Act],
    flushes: &[FlushAct],
) {
    run_on::<4096, 1024>(format, batch_size, mode, when_full, ops, writes, flushes);
}

fn run_on<const FLASH: usize, const B: usize>(
    format: BatchFormat,
    batch_size: usize,
    mode: SpoolMode,
    when_full: WhenFull,
    ops: &[Op],
    writes: &[Act],
    flushes: &[FlushAct],
) {
    let w = Scripted::new(writes, flushes);
    let clock = TestClock::default();
    let spool = FlashSpool::<_, 512>::open(RamFlash::<FLASH, 1024>::new(), 0..FLASH as u32)
        .unwrap()
        .mode(mode)
        .when_full(when_full);
    let config = Config::new("/dev/prop")
        .batch_size(batch_size)
        .flush_interval_ms(1000)
        .format(format);
    let ids: RandomIds<fn(&mut [u8; 16])> = RandomIds(|b| b.fill(9));
    let mut em: EmOf<FLASH, B> = SpoolEmitter::new(config, w.clone(), spool, ids, clock.clone());
    let mut accepted: Vec<String> = Vec::new();
    let mut refused = 0u64;
    let mut next = 0usize;
    let check = |em: &EmOf<FLASH, B>, accepted: &[String], refused: u64, stage: &str| {
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
            c.delivered + em.pending() as u64 + s.evicted,
            "{stage}: every accepted event delivered, pending or evicted: {c:?} {s:?} pending {}",
            em.pending()
        );
        let wire = w.wire.borrow();
        let r = read(format, &wire.wire);
        if s.evicted == 0 {
            r.assert_only_torn_fragments(&wire.wire);
        } else if format == BatchFormat::JsonLines {
            for bad in &r.unparsed {
                let text = String::from_utf8_lossy(bad);
                assert!(
                    text.matches("specversion").count() <= 1,
                    "{stage}: glued: {text}"
                );
            }
        }
        assert_eq!(
            r.ids.len() as u64,
            c.delivered,
            "{stage}: the reader parses what was counted delivered: {:?} {c:?} {s:?}\n{}",
            r.ids,
            String::from_utf8_lossy(&wire.wire)
        );
        let pos: Vec<usize> = r
            .ids
            .iter()
            .map(|id| accepted.iter().position(|a| a == id).expect("accepted"))
            .collect();
        assert!(
            pos.windows(2).all(|p| p[0] < p[1]),
            "{stage}: in order, once: {:?}",
            r.ids
        );
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
    em.flush().unwrap();
    assert_eq!(em.pending(), 0);
    check(&em, &accepted, refused, "end");
}

fn format() -> impl Strategy<Value = BatchFormat> {
    prop_oneof![Just(BatchFormat::JsonLines), Just(BatchFormat::JsonBatch)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    /// On a flash that holds more events than the batch, and on one of two
    /// pages that holds fewer (`small`).
    #[test]
    fn spool_emitter_counts_what_the_reader_parses(
        format in format(),
        batch_size in 1usize..6,
        always in any::<bool>(),
        drop_oldest in any::<bool>(),
        small in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..150),
        writes in proptest::collection::vec(write_act(), 0..80),
        flushes in proptest::collection::vec(flush_act(), 0..20),
    ) {
        let mode = if always { SpoolMode::Always } else { SpoolMode::WhenDown };
        let when_full = if drop_oldest { WhenFull::DropOldest } else { WhenFull::DropNewest };
        if small {
            run_on::<2048, 2048>(format, batch_size, mode, when_full, &ops, &writes, &flushes);
        } else {
            run(format, batch_size, mode, when_full, &ops, &writes, &flushes);
        }
    }
}
