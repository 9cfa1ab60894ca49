//! The flash spool through writer outages, a full flash and a broken one:
//! every event is delivered once, in order, or counted as dropped; a flash
//! that fails leaves the emitter running from RAM. And a property test:
//! random emits, outages, polls, flushes and power cuts (between calls and in
//! the middle of flash operations); every event `emit` accepted arrives or is
//! accounted for (dropped by policy, or only in RAM when the power went).
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::rc::Rc;

use common::flash::{Link, Power, Ram, TestClock, check, linked, open, reading};
use ossa_events_core::Clock;
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::emitter::EmitError;
use ossa_events_core::spool::{SpoolMode, WhenFull};
use proptest::prelude::*;

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("ev-{i:04}")).collect()
}

fn delivered(link: &Link) -> Vec<String> {
    common::read(BatchFormat::JsonLines, &link.out.borrow()).ids
}

#[test]
fn an_outage_sends_the_batch_to_flash_and_the_link_coming_back_drains_it_in_order_once() {
    let (mut em, link, clock) = linked(8, SpoolMode::WhenDown, WhenFull::DropOldest);
    let all = ids(30);
    for (i, id) in all.iter().enumerate() {
        link.down.set((5..20).contains(&i));
        em.emit(reading(id)).unwrap();
        clock.0.set(clock.0.get() + 250);
        let _ = em.poll(clock.now());
        if i == 19 {
            assert!(
                em.spool().len() >= 10,
                "the outage's events wait in flash: {}",
                em.spool().len()
            );
        }
    }
    em.flush().unwrap();
    assert_eq!(delivered(&link), all, "every event once, in order");
    let (c, s) = (em.counters(), em.spool_counters());
    assert_eq!(
        (c.emitted, c.delivered, c.dropped, c.rejected),
        (30, 30, 0, 0)
    );
    assert!(s.spooled >= 15, "the outage went to flash: {s:?}");
    assert_eq!(
        s.replayed, s.spooled,
        "all that went to flash came out of it"
    );
    assert_eq!(s.flash_errors, 0);
    assert!(em.spool().is_empty());
}

#[test]
fn a_restart_writes_what_the_last_run_left_in_flash_before_new_events() {
    let (mut em, link, _clock) = linked(8, SpoolMode::Always, WhenFull::DropOldest);
    link.down.set(true);
    let all = ids(12);
    for id in &all[..8] {
        em.emit(reading(id)).unwrap();
    }
    // The process ends with the link down: the events stay in flash.
    let Ok((_link, spool)) = em.into_parts() else {
        panic!("every event is in flash")
    };
    assert_eq!(spool.len(), 8);
    let flash = spool.into_flash();
    let power = Rc::new(Power::default());
    let link = Link {
        power: power.clone(),
        ..Link::default()
    };
    let mut em = open(
        flash.ram,
        8,
        power,
        SpoolMode::Always,
        WhenFull::DropOldest,
        link.clone(),
        TestClock::default(),
    );
    assert_eq!(
        em.spool().len(),
        8,
        "the reopened spool counts what it holds"
    );
    for id in &all[8..] {
        em.emit(reading(id)).unwrap();
    }
    em.flush().unwrap();
    assert_eq!(
        delivered(&link),
        all,
        "the old events first, then the new ones"
    );
}

#[test]
fn a_full_flash_dropping_the_oldest_keeps_the_newest_and_counts_each_drop() {
    // Two 1 KiB pages hold a few events of ~300 bytes.
    let (mut em, link, _clock) = linked(2, SpoolMode::WhenDown, WhenFull::DropOldest);
    link.down.set(true);
    let all = ids(20);
    for id in &all {
        em.emit(reading(id)).unwrap();
    }
    link.down.set(false);
    em.flush().unwrap();
    let got = delivered(&link);
    let (c, s) = (em.counters(), em.spool_counters());
    assert_eq!(c.emitted, 20);
    assert!(c.dropped > 0, "the flash filled");
    assert_eq!(s.evicted, c.dropped, "every drop was an eviction");
    assert_eq!(
        got.len() as u64 + c.dropped,
        20,
        "each event delivered or dropped: {got:?}"
    );
    assert_eq!(got.last(), all.last(), "the newest survives");
    let pos: Vec<usize> = got
        .iter()
        .map(|id| all.iter().position(|a| a == id).unwrap())
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
    assert_eq!(
        got,
        all[20 - got.len()..],
        "what survives is the newest, contiguous"
    );
}

#[test]
fn a_full_flash_dropping_the_newest_refuses_new_events_with_spool_full() {
    let (mut em, link, _clock) = linked(2, SpoolMode::Always, WhenFull::DropNewest);
    link.down.set(true);
    let all = ids(20);
    let mut refused = 0;
    for id in &all {
        match em.emit(reading(id)) {
            Ok(()) => {}
            Err(EmitError::SpoolFull) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused > 0);
    link.down.set(false);
    em.flush().unwrap();
    let got = delivered(&link);
    let c = em.counters();
    assert_eq!(c.dropped, refused);
    assert_eq!(
        c.emitted,
        20 - refused,
        "a refused event is not counted emitted"
    );
    assert_eq!(got, all[..got.len()], "the oldest are kept");
    assert_eq!(got.len() as u64, c.emitted);
}

#[test]
fn a_broken_flash_is_counted_and_the_emitter_goes_on_from_ram() {
    let power = Rc::new(Power::default());
    power.broken.set(true); // every write and erase fails
    let link = Link {
        power: power.clone(),
        ..Link::default()
    };
    let mut em = open(
        Ram::new(),
        8,
        power,
        SpoolMode::Always,
        WhenFull::DropOldest,
        link.clone(),
        TestClock::default(),
    );
    let all = ids(6);
    for id in &all {
        em.emit(reading(id)).unwrap();
    }
    em.flush().unwrap();
    assert_eq!(delivered(&link), all, "nothing lost while RAM holds it");
    assert!(
        em.spool_counters().flash_errors >= 6,
        "{:?}",
        em.spool_counters()
    );
    // With the link down too, RAM fills: the overflow is dropped, counted.
    link.down.set(true);
    let more = ids(40);
    let mut refused = 0;
    for id in &more[6..] {
        if em.emit(reading(id)).is_err() {
            refused += 1;
        }
    }
    assert!(refused > 0);
    assert_eq!(em.counters().dropped, refused);
    link.down.set(false);
    em.flush().unwrap();
    let c = em.counters();
    assert_eq!(c.delivered + c.dropped, 40, "{c:?}");
}

#[test]
fn an_event_longer_than_the_spool_limit_is_refused_as_too_large() {
    let (mut em, link, _clock) = linked(8, SpoolMode::Always, WhenFull::DropOldest);
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(600));
    let err = em
        .emit(
            ossa_events_core::Event::builder()
                .id("big")
                .ty("t")
                .data_json(&big),
        )
        .unwrap_err();
    assert!(matches!(err, EmitError::TooLarge), "{err}");
    assert_eq!((em.counters().rejected, em.counters().emitted), (1, 0));
    em.emit(reading("small")).unwrap();
    em.flush().unwrap();
    assert_eq!(delivered(&link), ["small"]);
}

// --- the property test ---------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Emit,
    LinkDown,
    LinkUp,
    Tick(i64),
    Poll,
    Flush,
    /// The power goes off between two calls (RAM is lost).
    CutBetween,
    /// The power goes off at the `k`-th flash operation from now.
    CutWithin(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => Just(Op::Emit),
        1 => Just(Op::LinkDown),
        1 => Just(Op::LinkUp),
        2 => (1i64..1500).prop_map(Op::Tick),
        2 => Just(Op::Poll),
        1 => Just(Op::Flush),
        1 => Just(Op::CutBetween),
        1 => (0u64..12).prop_map(Op::CutWithin),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_accepted_event_arrives_or_is_accounted_for(
        ops in proptest::collection::vec(op(), 1..120),
        always in any::<bool>(),
        drop_oldest in any::<bool>(),
        pages in 2u32..5,
    ) {
        let mode = if always { SpoolMode::Always } else { SpoolMode::WhenDown };
        let when_full = if drop_oldest { WhenFull::DropOldest } else { WhenFull::DropNewest };
        let out = Link::default().out;
        let mut power = Rc::new(Power::default());
        let mut link = Link { out: out.clone(), power: power.clone(), ..Link::default() };
        let clock = TestClock::default();
        let mut em = open(Ram::new(), pages, power.clone(), mode, when_full, link.clone(), clock.clone());

        let mut all = Vec::new();
        let mut accepted = Vec::new();
        let (mut dropped_accepted, mut lost_allowed, mut cuts) = (0u64, 0u64, 0usize);
        let mut refused = 0u64;
        let mut n = 0;

        for op in ops {
            let ram_only = (em.pending() - em.spool().len()) as u64;
            if mode == SpoolMode::Always {
                prop_assert_eq!(ram_only, 0, "Always keeps nothing only in RAM");
            }
            let cut_now = match op {
                Op::Emit => {
                    let id = format!("ev-{n:04}");
                    n += 1;
                    all.push(id.clone());
                    let r = em.emit(reading(&id));
                    if !power.off.get() {
                        match r {
                            Ok(()) => accepted.push(id),
                            Err(EmitError::SpoolFull) => refused += 1,
                            Err(e) => prop_assert!(false, "emit failed: {e}"),
                        }
                    }
                    power.off.get()
                }
                Op::LinkDown => { link.down.set(true); false }
                Op::LinkUp => { link.down.set(false); false }
                Op::Tick(ms) => { clock.0.set(clock.0.get() + ms); false }
                Op::Poll => { let _ = em.poll(clock.now()); power.off.get() }
                Op::Flush => { let _ = em.flush(); power.off.get() }
                Op::CutBetween => true,
                Op::CutWithin(k) => { power.cut_at.set(Some(power.ops.get() + k)); false }
            };
            if cut_now {
                // RAM is gone: what was only there may be lost; and a cut in
                // the middle of a call may have hit an eviction (an event
                // being dropped by policy, not yet counted).
                lost_allowed += ram_only;
                if power.off.get() && when_full == WhenFull::DropOldest {
                    lost_allowed += 1;
                }
                cuts += 1;
                let c = em.counters();
                dropped_accepted += c.dropped;
                // A power cut: what was only in RAM is gone.
                em.discard_pending();
                let Ok((_l, spool)) = em.into_parts() else {
                    panic!("nothing left in RAM")
                };
                let ram = spool.into_flash().ram;
                power = Rc::new(Power::default());
                link = Link { out: out.clone(), power: power.clone(), down: link.down.clone() };
                em = open(ram, pages, power.clone(), mode, when_full, link.clone(), clock.clone());
            }
        }
        // The link comes back for good; everything drains.
        power.cut_at.set(None);
        link.down.set(false);
        em.flush().unwrap();
        prop_assert_eq!(em.pending(), 0);
        dropped_accepted += em.counters().dropped;
        dropped_accepted -= refused;

        let stream = out.borrow().clone();
        check(&stream, &all, &[], 4 * cuts, "property run");
        let got: HashSet<String> = common::read(BatchFormat::JsonLines, &stream).ids.into_iter().collect();
        let missing = accepted.iter().filter(|id| !got.contains(*id)).count() as u64;
        if cuts == 0 {
            prop_assert_eq!(missing, dropped_accepted, "each accepted event delivered or dropped, exactly");
        } else {
            prop_assert!(missing <= dropped_accepted + lost_allowed,
                "missing {} > dropped {} + lost with RAM {}", missing, dropped_accepted, lost_allowed);
        }
    }
}
