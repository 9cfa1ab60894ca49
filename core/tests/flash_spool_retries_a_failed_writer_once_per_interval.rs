//! The flash spool's emitter waits a flush interval after a failed write
//! before it tries the writer again, as its `poll` and `next_flush_in_ms`
//! promise: a superloop that sleeps `next_flush_in_ms` and then polls does
//! not spin on a link that is down. (Found by a review: events in the RAM
//! batch kept `poll` due, and `next_flush_in_ms` at 0, at every call.)
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::flash::{linked, reading};
use ossa_events_core::Clock;
use ossa_events_core::spool::{SpoolMode, WhenFull};

#[test]
fn a_failed_poll_waits_a_flush_interval_before_the_next_try() {
    let (mut em, link, clock) = linked(8, SpoolMode::WhenDown, WhenFull::DropOldest);
    em.emit(reading("e0")).unwrap(); // batches of 2: pending in RAM
    link.down.set(true);
    clock.0.set(1000); // the flush interval (1 s) has passed
    assert!(em.poll(clock.now()).is_err());
    assert_eq!(em.counters().failed_writes, 1);
    // 1 ms later the writer is not tried again, and the superloop is told
    // to sleep out the interval.
    clock.0.set(1001);
    assert_eq!(em.next_flush_in_ms(clock.now()), Some(999));
    let _ = em.poll(clock.now());
    assert_eq!(
        em.counters().failed_writes,
        1,
        "tried again 1 ms after a failure"
    );
    // An interval after the failure it is tried again; the link is back.
    link.down.set(false);
    clock.0.set(2000);
    assert_eq!(em.next_flush_in_ms(clock.now()), Some(0));
    assert_eq!(em.poll(clock.now()).unwrap(), 1);
    assert_eq!(
        common::read(
            ossa_events_core::batch::BatchFormat::JsonLines,
            &link.out.borrow()
        )
        .ids,
        ["e0"]
    );
}
