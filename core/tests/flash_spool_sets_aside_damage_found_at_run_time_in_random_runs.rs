//! Random runs of the flash spool's emitter (emits, polls, flushes, a
//! writer that fails now and then) on a flash that is damaged while it
//! runs, at random points: a bit clears in a record's length word or JSON
//! (bit rot), or the reads of a record's header or JSON start to fail for
//! good (a bad sector). After every step every accepted event is counted
//! once: delivered, pending, evicted or damaged, and the reader parses what
//! `delivered` counts, each event once, in emit order. Once the writer
//! works again the spool drains (`pending()` reaches 0), and every event
//! that never arrived was evicted or was in a place the damage reached (a
//! damaged record, or the rest of a page after a header that cannot be
//! walked), as many as `evicted` and `damaged` count.
//!
//! In `SpoolMode::Always`, after every `emit` that returned `Ok`, the event
//! is durable: a restart from a copy of the flash as it is then (a power
//! cut right after `emit` returned) writes it out, or it was delivered
//! already, unless the flash failed in that `emit` (counted in
//! `flash_errors`: the documented fallback to RAM) or damage reaches it.
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use common::flash::{
    Op, PAGE, ScriptedEm, Shared, TestClock, assert_counts, assert_none_glued,
    assert_parses_delivered, flush_act, format, op, open_spool, records, scripted_emitter,
    write_act,
};
use common::{Act, FlushAct, Scripted, read};
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::spool::{FlashSpool, SpoolMode, WhenFull};
use ossa_events_core::{Clock, Event};
use proptest::prelude::*;

/// Damage done to the `k`-th waiting record (modulo how many wait).
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// A bit of its length word clears.
    FlipLength { k: usize, bit: u8 },
    /// A bit of its JSON clears.
    FlipJson { k: usize, at: usize, bit: u8 },
    /// Reads of its header fail from now on.
    BadHeader { k: usize },
    /// Reads of its JSON fail from now on.
    BadJson { k: usize },
}

#[derive(Debug, Clone)]
enum Step {
    Op(Op),
    Fault(Fault),
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        (0usize..8, 0u8..32).prop_map(|(k, bit)| Fault::FlipLength { k, bit }),
        (0usize..8, 0usize..400, 0u8..8).prop_map(|(k, at, bit)| Fault::FlipJson { k, at, bit }),
        (0usize..8).prop_map(|k| Fault::BadHeader { k }),
        (0usize..8).prop_map(|k| Fault::BadJson { k }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![12 => op().prop_map(Step::Op), 1 => fault().prop_map(Step::Fault)]
}

/// Steps with damage more often (for a flash of two pages, kept full).
fn step_often_damaged() -> impl Strategy<Value = Step> {
    prop_oneof![4 => op().prop_map(Step::Op), 1 => fault().prop_map(Step::Fault)]
}

/// Where damage reaches: from `at` to the end of its page (a length word
/// that does not check, a header that cannot be read), or one record.
#[derive(Debug, Clone, Copy)]
struct Reach {
    at: usize,
    to_page_end: bool,
    /// The word at `at` as the fault left it: the reach holds while the
    /// page is not erased and written again.
    word: [u8; 4],
    /// A bad sector (it holds for good).
    bad: bool,
}

impl Reach {
    /// Whether the damage is still there: a bad sector always is, a
    /// changed word until its page is erased and written again.
    fn holds(&self, flash: &Shared) -> bool {
        self.bad || flash.ram.borrow().as_bytes()[self.at..self.at + 4] == self.word
    }
}

fn ids_in(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.split("\"id\":\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

/// Ids the damage reaches now.
fn reached(flash: &Shared, reaches: &[Reach], into: &mut HashSet<String>) {
    let ram = flash.ram.borrow();
    let bytes = ram.as_bytes();
    for r in reaches {
        if !r.bad && bytes[r.at..r.at + 4] != r.word {
            continue; // erased since
        }
        let page_end = (r.at / PAGE + 1) * PAGE;
        let (from, end) = if r.bad {
            // A bad sector stays: whatever record is written over it since
            // may be unreadable, and the rest of its page with it.
            (page_end - PAGE, page_end)
        } else if r.to_page_end {
            (r.at, page_end)
        } else {
            let len = u32::from_le_bytes(r.word) as usize & 0xFFFF;
            (r.at, (r.at + 12 + len).min(page_end))
        };
        into.extend(ids_in(&bytes[from..end]));
    }
}

/// The ids a restart from a copy of `flash` as it is now writes out (the
/// bad sectors left out: a restart on them fails to open, which the
/// module docs say).
fn after_restart(flash: &Shared, bytes: usize, format: BatchFormat) -> Vec<String> {
    let copy = Shared::default();
    *copy.ram.borrow_mut() = flash.ram.borrow().clone();
    let spool = FlashSpool::<_, 512>::open(copy, 0..bytes as u32).expect("the copy opens");
    common::flash::drained_ids::<_, 1024>(spool, format)
}

fn inject(flash: &Shared, fault: Fault, reaches: &mut Vec<Reach>, suspects: &mut HashSet<String>) {
    let waiting: Vec<_> = records(flash.ram.borrow().as_bytes())
        .into_iter()
        .filter(|r| r.waiting)
        .collect();
    if waiting.is_empty() {
        return;
    }
    // (Its id as it was: a bit flip may change it.)
    let mut pick = |k: usize| {
        let r = waiting[k % waiting.len()].clone();
        suspects.insert(r.id.clone());
        r
    };
    let mut ram = flash.ram.borrow_mut();
    let bad = matches!(fault, Fault::BadHeader { .. } | Fault::BadJson { .. });
    let reach = match fault {
        Fault::FlipLength { k, bit } => {
            let r = pick(k);
            ram.as_bytes_mut()[r.at + usize::from(bit / 8)] &= !(1 << (bit % 8));
            (r.at, true)
        }
        Fault::FlipJson { k, at, bit } => {
            let r = pick(k);
            ram.as_bytes_mut()[r.at + 12 + at % r.len] &= !(1 << bit);
            (r.at, false)
        }
        Fault::BadHeader { k } => {
            let r = pick(k);
            flash.bad.borrow_mut().push(r.at as u32..r.at as u32 + 12);
            (r.at, true)
        }
        Fault::BadJson { k } => {
            let r = pick(k);
            let json = (r.at + 12) as u32;
            flash.bad.borrow_mut().push(json..json + r.len as u32);
            (r.at, false)
        }
    };
    let word = ram.as_bytes()[reach.0..reach.0 + 4].try_into().unwrap();
    reaches.push(Reach {
        at: reach.0,
        to_page_end: reach.1,
        word,
        bad,
    });
}

/// One run's draw: the framing, the batch size, `Always` (or `WhenDown`),
/// `DropOldest` (or `DropNewest`), one damaged place at a time (or any
/// number), the steps, the writes, the flushes.
type Case = (
    BatchFormat,
    usize,
    bool,
    bool,
    bool,
    Vec<Step>,
    Vec<Act>,
    Vec<FlushAct>,
);

fn case(one_at_a_time: bool) -> impl Strategy<Value = Case> {
    (
        format(),
        1usize..6,
        any::<bool>(),
        any::<bool>(),
        Just(one_at_a_time),
        proptest::collection::vec(step(), 1..150),
        proptest::collection::vec(write_act(), 0..80),
        proptest::collection::vec(flush_act(), 0..20),
    )
}

/// `Always` with `DropOldest` (damage in one place at a time, or in
/// several), damage often, on a flash of two pages: evictions all along.
fn always_case() -> impl Strategy<Value = Case> {
    (
        format(),
        1usize..6,
        Just(true),
        Just(true),
        any::<bool>(),
        proptest::collection::vec(step_often_damaged(), 1..150),
        proptest::collection::vec(write_act(), 0..80),
        proptest::collection::vec(flush_act(), 0..20),
    )
}

const FLASH: usize = 4 * PAGE;

fn run(case: &Case) {
    run_on(case, FLASH);
}

/// A run on the first `bytes` bytes of the flash.
fn run_on(case: &Case, bytes: usize) {
    let (format, batch_size, always, drop_oldest, one_at_a_time, steps, writes, flushes) = case;
    let (format, one_at_a_time) = (*format, *one_at_a_time);
    let (mode, when_full) = common::flash::policies(*always, *drop_oldest);
    let w = Scripted::new(writes, flushes);
    let clock = TestClock::default();
    let flash = Shared::default();
    let spool = open_spool(flash.clone(), bytes, mode, when_full);
    let mut em: ScriptedEm<Shared, 1024> =
        scripted_emitter(spool, format, *batch_size, w.clone(), clock.clone());
    let mut reaches: Vec<Reach> = Vec::new();
    let mut suspects = HashSet::new();
    let mut accepted: Vec<String> = Vec::new();
    let mut refused = 0;
    let check = |em: &ScriptedEm<Shared, 1024>, accepted: &[String], refused: u64, stage: &str| {
        let (c, s) = assert_counts(em, accepted, refused, true, stage);
        let wire = w.wire.borrow();
        let r = read(format, &wire.wire);
        assert_none_glued(format, &r, stage);
        assert_parses_delivered(&r, &c, &s, &wire.wire, stage);
        let order: Vec<usize> = r
            .ids
            .iter()
            .map(|id| accepted.iter().position(|a| a == id).expect("accepted"))
            .collect();
        // Each event once and in order. (With damage in several places at
        // once, see `spool_with_run_time_damage_in_several_places`.)
        assert!(
            !one_at_a_time || order.windows(2).all(|p| p[0] < p[1]),
            "{stage}: delivered twice or out of order: {:?}",
            r.ids
        );
    };
    let mut next = 0usize;
    for (k, step) in steps.iter().enumerate() {
        // In `Always`: the event this step's `emit` accepted, and the flash
        // errors before it.
        let mut durable = None;
        match *step {
            Step::Fault(f) => {
                // One damaged place at a time, unless the case allows more.
                let quiet = !reaches.iter().any(|r| r.holds(&flash));
                if !one_at_a_time || quiet {
                    inject(&flash, f, &mut reaches, &mut suspects);
                }
            }
            Step::Op(Op::Emit(len)) => {
                next += 1;
                let id = format!("e{next}");
                let subject = "s".repeat(len);
                let errors = em.spool_counters().flash_errors;
                match em.emit(Event::builder().id(&id).ty("t").subject(&subject)) {
                    Ok(()) => {
                        if mode == SpoolMode::Always {
                            durable = Some((id.clone(), errors));
                        }
                        accepted.push(id);
                    }
                    Err(ossa_events_core::emitter::EmitError::SpoolFull) => refused += 1,
                    Err(ossa_events_core::emitter::EmitError::TooLarge) => {}
                    Err(e) => panic!("{e:?}"),
                }
            }
            Step::Op(Op::Poll(ms)) => {
                clock.0.set(clock.0.get() + ms);
                let _ = em.poll(clock.now());
            }
            Step::Op(Op::Flush) => {
                let _ = em.flush();
            }
        }
        reached(&flash, &reaches, &mut suspects);
        check(&em, &accepted, refused, &format!("step {k} {step:?}"));
        if let Some((id, errors)) = durable
            && em.spool_counters().flash_errors == errors
            && !suspects.contains(&id)
        {
            let delivered = read(format, &w.wire.borrow().wire).ids.contains(&id);
            assert!(
                delivered || after_restart(&flash, bytes, format).contains(&id),
                "step {k}: Always: {id} accepted, neither delivered nor in flash \
                 (a power cut now loses it): {:?} spool {:?}",
                em.spool_counters(),
                em.spool()
            );
        }
    }
    // The writer works again; the bad sectors stay bad.
    w.writes.borrow_mut().clear();
    w.flushes.borrow_mut().clear();
    for _ in 0..200 {
        clock.0.set(clock.0.get() + 1000);
        let _ = em.flush();
        reached(&flash, &reaches, &mut suspects);
        if em.pending() == 0 {
            break;
        }
    }
    check(&em, &accepted, refused, "end");
    assert_eq!(em.pending(), 0, "end: the spool drained: {:?}", em.spool());
    let got: HashSet<String> = read(format, &w.wire.borrow().wire)
        .ids
        .into_iter()
        .collect();
    let lost: Vec<&String> = accepted.iter().filter(|id| !got.contains(*id)).collect();
    let s = em.spool_counters();
    if !one_at_a_time {
        return;
    }
    assert_eq!(
        lost.len() as u64,
        s.evicted + s.damaged,
        "end: every event that never arrived was evicted or damaged: {lost:?} {s:?}"
    );
    if when_full == WhenFull::DropNewest {
        for id in &lost {
            assert!(
                suspects.contains(*id),
                "end: {id} never arrived, yet no damage reached it: {s:?} reaches {reaches:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn spool_with_run_time_damage(case in case(true)) {
        run(&case);
    }

    /// Damage in several places at once: the counts still hold and the
    /// spool drains. Which events went out and which were set aside may be
    /// told wrong (an event written out twice where one set aside was
    /// lost), and an event may go out before older ones: an eviction gives
    /// up on at most one unreadable head per emit, and past that the new
    /// event waits in RAM (see the module docs).
    #[test]
    fn spool_with_run_time_damage_in_several_places(case in case(false)) {
        run(&case);
    }

    /// `Always` keeps its promise through damage and evictions: every
    /// event `emit` accepted is in flash (or delivered) when it returns.
    #[test]
    fn always_spool_on_two_pages_with_run_time_damage(case in always_case()) {
        run_on(&case, 2 * PAGE);
    }
}

/// The case the property found first: a bad sector at the head record,
/// whose event had gone out (from RAM) and waited to be passed. Once the
/// spool gave up on the record, the pop in progress also passed the first
/// event of the next page, which never went out (lost, uncounted).
#[test]
fn an_event_that_went_out_set_aside_with_its_page_does_not_pass_the_next() {
    use Op::{Emit, Flush, Poll};
    let e = |n| Step::Op(Emit(n));
    let p = |n| Step::Op(Poll(n));
    let case: Case = (
        BatchFormat::JsonLines,
        1,
        false,
        false,
        true,
        vec![
            e(1),
            e(101),
            e(302),
            e(1),
            Step::Op(Flush),
            Step::Op(Flush),
            e(71),
            p(1000),
            p(1001),
            p(1000),
            e(50),
            e(108),
            e(356),
            e(1),
            e(1),
            p(1000),
            e(1),
            e(34),
            Step::Fault(Fault::BadHeader { k: 0 }),
        ],
        [
            &[Act::Fail { passed: 0 }; 6][..],
            &[Act::Accept, Act::Accept, Act::Fail { passed: 0 }],
        ]
        .concat(),
        vec![],
    );
    run(&case);
}

/// Found by the property (and failing before this change too): the writer
/// took e1's line whole, then its batch was cleared for room; e1's JSON
/// changed in flash before the next round loaded it again. The load set e1
/// aside as damaged, and the writer's flush delivered its line all the
/// same: counted damaged, parsed by the reader. Now no record whose line
/// the writer holds is set aside: the load stops there, and the round
/// flushes the writer to deliver what it holds.
#[test]
fn a_line_the_writer_holds_is_delivered_not_counted_damaged() {
    use Op::{Emit, Flush, Poll};
    let e = |n| Step::Op(Emit(n));
    let p = |n| Step::Op(Poll(n));
    let mut steps = vec![
        e(1),
        p(1000),
        p(148),
        p(852),
        p(1000),
        p(1000),
        Step::Op(Flush),
        p(255),
        p(745),
        Step::Fault(Fault::FlipJson {
            k: 0,
            at: 0,
            bit: 3,
        }),
    ];
    steps.extend(std::iter::repeat_n(e(1), 7));
    let fail = Act::Fail { passed: 0 };
    let writes = [&[fail; 6][..], &[Act::Accept; 4], &[fail]].concat();
    for one_at_a_time in [true, false] {
        let case: Case = (
            BatchFormat::JsonBatch,
            1,
            false,
            false,
            one_at_a_time,
            steps.clone(),
            writes.clone(),
            vec![],
        );
        run(&case);
    }
}

/// Found by the property on the way: the writer held the array of e1..e3
/// (its batch cleared for room), and e1's length word changed in flash.
/// The load stopped there, but its last step set the page aside, counting
/// e1..e3 damaged; the writer's flush then delivered them too.
#[test]
fn a_damaged_page_under_lines_the_writer_holds_is_not_counted_damaged() {
    use Op::{Emit, Poll};
    let e = |n| Step::Op(Emit(n));
    let steps = vec![
        Step::Op(Poll(1)),
        e(122),
        e(49),
        e(94),
        e(316),
        Step::Fault(Fault::FlipLength { k: 4, bit: 16 }),
    ];
    let case: Case = (
        BatchFormat::JsonBatch,
        3,
        false,
        false,
        true,
        steps,
        vec![
            Act::Accept,
            Act::Accept,
            Act::Accept,
            Act::Fail { passed: 0 },
        ],
        vec![],
    );
    run(&case);
}

/// Found by the property (and failing before this change too): the writer
/// held the array of e1..e4 (its batch cleared for room) and e2's header
/// became unreadable. Every round then loaded e1, failed at e2, and, not
/// every held line being back, cleared the batch and wrote nothing: the
/// spool never drained. Now the round flushes the writer to deliver what
/// it holds, and the unreadable record is passed as one that went out.
#[test]
fn lines_the_writer_holds_go_out_past_a_record_that_never_reads() {
    use Op::{Emit, Flush, Poll};
    let e = |n| Step::Op(Emit(n));
    let p = |n| Step::Op(Poll(n));
    let f = || Step::Op(Flush);
    let steps = vec![
        e(1),
        e(1),
        e(1),
        p(1000),
        e(1),
        p(1000),
        p(1000),
        p(1000),
        p(1000),
        f(),
        p(348),
        p(652),
        f(),
        Step::Fault(Fault::BadHeader { k: 1 }),
        e(1),
    ];
    let fail = Act::Fail { passed: 0 };
    let writes = [&[fail; 8][..], &[Act::Accept; 4], &[fail]].concat();
    for one_at_a_time in [true, false] {
        let case: Case = (
            BatchFormat::JsonBatch,
            3,
            false,
            false,
            one_at_a_time,
            steps.clone(),
            writes.clone(),
            vec![],
        );
        run(&case);
    }
}
