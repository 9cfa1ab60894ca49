//! The flash spool's emitter against a scripted writer (short writes,
//! `Ok(0)`, failed writes, failed flushes), in both framings, any batch
//! size, both modes and both policies, on a flash that holds more events
//! than the batch and on one that holds fewer: after every step what the
//! reader parses is what `delivered` counts, in emit order, once; every
//! accepted event is delivered, pending or evicted (counted dropped).
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::flash::{
    Op, ScriptedEm, TestClock, assert_counts, assert_none_glued, assert_parses_delivered, drive,
    flush_act, format, op, open_spool, scripted_emitter, write_act,
};
use common::{Act, FlushAct, Scripted, read};
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::spool::{RamFlash, SpoolMode, WhenFull};
use proptest::prelude::*;

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
    let spool = open_spool(RamFlash::<FLASH, 1024>::new(), FLASH, mode, when_full);
    let mut em: ScriptedEm<RamFlash<FLASH, 1024>, B> =
        scripted_emitter(spool, format, batch_size, w.clone(), clock.clone());
    let check = |em: &ScriptedEm<RamFlash<FLASH, 1024>, B>,
                 accepted: &[String],
                 refused: u64,
                 stage: &str| {
        let (c, s) = assert_counts(em, accepted, refused, false, stage);
        let wire = w.wire.borrow();
        let r = read(format, &wire.wire);
        if s.evicted == 0 {
            r.assert_only_torn_fragments(&wire.wire);
        } else {
            assert_none_glued(format, &r, stage);
        }
        assert_parses_delivered(&r, &c, &s, &wire.wire, stage);
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
    let t = drive(&mut em, &clock, ops, &check);
    w.writes.borrow_mut().clear();
    w.flushes.borrow_mut().clear();
    em.flush().unwrap();
    assert_eq!(em.pending(), 0);
    check(&em, &t.accepted, t.refused, "end");
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
