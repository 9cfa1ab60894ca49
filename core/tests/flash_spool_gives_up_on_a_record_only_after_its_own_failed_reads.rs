//! The spool gives up on the record at its head (sets it aside, counted
//! damaged) only after more than 8 failed reads of that record in a row.
//! The count of failures is kept by the record's address; a record written
//! later at the same address (its page erased and used again as the ring
//! turns) is another record and starts with none. (Before, the count of
//! the record given up on stayed: the first failed read of the new one,
//! a driver error retried at the next flush, set aside the rest of its
//! page, and an event that read whole was counted damaged.)
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::flash::{EmOn, FLASH, Link, PAGE, Shared, TestClock, emitter, reading, records};
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::spool::{FlashSpool, SpoolMode};

fn drain(em: &mut EmOn<Shared>) {
    for _ in 0..40 {
        let _ = em.flush();
        if em.pending() == 0 {
            break;
        }
    }
}

/// Records written at `page` (waiting or removed).
fn written_in(flash: &Shared, page: usize) -> usize {
    records(flash.ram.borrow().as_bytes())
        .iter()
        .filter(|r| r.at / PAGE == page)
        .count()
}

#[test]
fn a_new_record_where_one_was_given_up_on_gets_its_own_retries() {
    let flash = Shared::default();
    let spool = FlashSpool::<_, 512>::open(flash.clone(), 0..FLASH as u32)
        .unwrap()
        .mode(SpoolMode::Always);
    let link = Link::default();
    let mut em = emitter(spool, link.clone(), TestClock::default());

    // The first page full (three events, copies in the batch), then its
    // first header cannot be read for a while. Every event goes out from
    // RAM, in order, as the ring turns; the spool gives up on the header
    // (past 8 failed reads) to pass the records that went out.
    link.down.set(true);
    for id in ["a1", "a2", "a3"] {
        em.emit(reading(id)).unwrap();
    }
    assert_eq!(written_in(&flash, 0), 3);
    let first = records(flash.ram.borrow().as_bytes())[0].clone();
    assert_eq!((first.id.as_str(), first.at), ("a1", 8));
    let header = first.at as u32..first.at as u32 + 4;
    flash.bad.borrow_mut().push(header.clone());
    link.down.set(false);
    let _ = em.flush();
    assert_eq!(em.counters().delivered, 3);
    let last = FLASH / PAGE - 1;
    let mut n = 0;
    while written_in(&flash, last) < 3 {
        n += 1;
        em.emit(reading(&format!("b{n}"))).unwrap();
        let _ = em.flush();
        if n == 10 {
            // Given up on by now; the flash reads again.
            flash.bad.borrow_mut().clear();
        }
        assert!(n < 100);
    }
    assert!(n > 10);
    assert_eq!(em.pending(), 0);
    assert_eq!(
        em.counters().delivered,
        3 + n as u64,
        "all went out, from RAM"
    );
    let damaged = em.spool_counters().damaged;
    assert_eq!(damaged, 0);

    // Events wait in flash (the batch's copies given up for room), the
    // first where a1 was.
    link.down.set(true);
    let cs = ["c1", "c2", "c3", "c4", "c5", "c6"];
    for id in cs {
        em.emit(reading(id)).unwrap();
    }
    let c1 = records(flash.ram.borrow().as_bytes())
        .into_iter()
        .find(|r| r.id == "c1" && r.waiting)
        .unwrap();
    assert_eq!(c1.at, first.at, "c1 is where a1 was");
    // One read of its header fails (a driver error): a flash error, tried
    // again at the next flush.
    flash.bad.borrow_mut().push(header);
    link.down.set(false);
    let errors = em.spool_counters().flash_errors;
    let _ = em.flush();
    assert_eq!(
        em.spool_counters().damaged,
        damaged,
        "one failed read does not set aside the new record's page"
    );
    assert!(em.spool_counters().flash_errors > errors);
    flash.bad.borrow_mut().clear();
    drain(&mut em);
    let got = common::read(BatchFormat::JsonLines, &link.out.borrow()).ids;
    let tail: Vec<&str> = got.iter().rev().take(6).rev().map(String::as_str).collect();
    assert_eq!(tail, cs);
    assert_eq!(em.spool_counters().damaged, damaged);
    assert_eq!(em.pending(), 0);
}
