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

use std::cell::Cell;
use std::rc::Rc;

use common::flash::{Link, Power, Ram, TestClock, check, open, reading};
use ossa_events_core::Clock;
use ossa_events_core::spool::{SpoolMode, WhenFull};

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
        8,
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
    // A power cut (or the end of the run): what was only in RAM is gone.
    em.discard_pending();
    let Ok((_link, spool)) = em.into_parts() else {
        panic!("nothing left in RAM")
    };
    out.ram = spool.into_flash().ram;
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
        8,
        power,
        mode,
        WhenFull::DropOldest,
        link,
        TestClock::default(),
    );
    let held = em.spool().len();
    // A cut leaves at most the one record it was writing unreadable.
    let damaged = em.spool_counters().damaged;
    assert!(damaged <= 1, "{damaged} records set aside after one cut");
    em.flush().unwrap();
    assert!(em.spool().is_empty(), "the drain empties the spool");
    assert_eq!(em.spool_counters().replayed, held as u64);
    held
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
