//! A length word that changed on the newest page (the one records are
//! appended to), found by a load before the head gets there: the records
//! after it can no longer be walked, and the module docs say no new record
//! goes to that page. Events emitted after that go to a new page and are
//! written out, not set aside with the damaged rest. (Before, they were
//! appended after the damage, then counted damaged with it: lost.)
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::flash::{FLASH, Link, PAGE, Shared, TestClock, emitter, reading, record_of};
use ossa_events_core::Clock;
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::spool::FlashSpool;

#[test]
fn events_after_damage_found_on_the_newest_page_go_to_a_new_page() {
    let flash = Shared::default();
    let spool = FlashSpool::<_, 512>::open(flash.clone(), 0..FLASH as u32).unwrap();
    let link = Link::default();
    let clock = TestClock::default();
    let mut em = emitter(spool, link.clone(), clock.clone());
    link.down.set(true);
    for id in ["e1", "e2", "e3", "e4"] {
        em.emit(reading(id)).unwrap();
    }
    let e4 = record_of(flash.ram.borrow().as_bytes(), "e4");
    assert_eq!(e4.at / PAGE, 1, "e4 opens the newest page");
    flash.ram.borrow_mut().as_bytes_mut()[e4.at] &= !0x04;
    // A try of the writer (still down) loads from flash: the load stops at
    // the damage.
    clock.0.set(clock.0.get() + 1000);
    let _ = em.poll(clock.now());
    for id in ["e5", "e6", "e7"] {
        em.emit(reading(id)).unwrap();
    }
    link.down.set(false);
    for _ in 0..40 {
        let _ = em.flush();
        if em.pending() == 0 {
            break;
        }
    }
    let got = common::read(BatchFormat::JsonLines, &link.out.borrow()).ids;
    assert_eq!(
        got,
        ["e1", "e2", "e3", "e5", "e6", "e7"],
        "{:?}",
        em.spool_counters()
    );
    assert_eq!(em.spool_counters().damaged, 1, "e4 alone");
    assert_eq!(em.pending(), 0);
}
