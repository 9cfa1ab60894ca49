//! Damage that appears in flash after `open`, at the head of the queue: a
//! record the driver can no longer read (a bad sector), and a record's
//! length word that changes (bit rot), on the oldest page or on the newest
//! one still being written. The spool sets the record aside (or, where its
//! length cannot be read, the rest of its page), counts each event in it
//! once in `damaged`, and drains what follows in order; `pending()` reaches
//! 0. (Before, a record whose read failed every time stopped draining for
//! good, and a changed length word left events counted in flash that no
//! walk reached: `pending()` stuck above 0.)
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::flash::{
    EmOn, FLASH, Link, PAGE, Shared, TestClock, emitter, reading, record_of, records,
};
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::spool::FlashSpool;

/// A flash that holds `ids` in the spool, left by a run whose link was down.
fn filled(ids: &[&str]) -> Shared {
    let flash = Shared::default();
    let spool = FlashSpool::<_, 512>::open(flash.clone(), 0..FLASH as u32).unwrap();
    let link = Link::default();
    link.down.set(true);
    let mut em = emitter(spool, link, TestClock::default());
    for id in ids {
        em.emit(reading(id)).unwrap();
    }
    let (_, spool) = em.into_parts().expect("all in flash");
    assert_eq!(spool.len(), ids.len());
    flash
}

/// The next run, its link up.
fn reopen(flash: &Shared) -> (EmOn<Shared>, Link) {
    let spool = FlashSpool::<_, 512>::open(flash.clone(), 0..FLASH as u32).unwrap();
    let link = Link::default();
    (emitter(spool, link.clone(), TestClock::default()), link)
}

/// Flushes until nothing is left (or 40 tries); the ids the reader got.
fn drain(em: &mut EmOn<Shared>, link: &Link) -> Vec<String> {
    for _ in 0..40 {
        let _ = em.flush();
        if em.pending() == 0 {
            break;
        }
    }
    common::read(BatchFormat::JsonLines, &link.out.borrow()).ids
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Ids on the same page as `id`'s record, from it on.
fn rest_of_page(flash: &Shared, id: &str) -> Vec<String> {
    let ram = flash.ram.borrow();
    let r = record_of(ram.as_bytes(), id);
    records(ram.as_bytes())
        .into_iter()
        .filter(|o| o.at / PAGE == r.at / PAGE && o.at >= r.at && o.waiting)
        .map(|o| o.id)
        .collect()
}

const SEVEN: [&str; 7] = ["e1", "e2", "e3", "e4", "e5", "e6", "e7"];

#[test]
fn a_head_record_whose_json_never_reads_is_set_aside_once() {
    let flash = filled(&SEVEN);
    let (mut em, link) = reopen(&flash);
    let r = record_of(flash.ram.borrow().as_bytes(), "e1");
    // Its header reads; its JSON is on a bad sector.
    let json = (r.at + 12) as u32;
    flash.bad.borrow_mut().push(json..json + r.len as u32);
    let got = drain(&mut em, &link);
    assert_eq!(
        got,
        ids(&SEVEN[1..]),
        "the events after e1 went out, in order"
    );
    assert_eq!(em.spool_counters().damaged, 1);
    assert_eq!(em.pending(), 0);
    assert_eq!(em.counters().delivered, 6);
}

#[test]
fn a_head_record_whose_header_never_reads_sets_aside_the_rest_of_its_page() {
    let flash = filled(&SEVEN);
    let (mut em, link) = reopen(&flash);
    let lost = rest_of_page(&flash, "e1");
    assert!(lost.len() >= 2 && lost.len() < 7, "{lost:?}");
    let r = record_of(flash.ram.borrow().as_bytes(), "e1");
    flash.bad.borrow_mut().push(r.at as u32..r.at as u32 + 4);
    let got = drain(&mut em, &link);
    let rest: Vec<String> = ids(&SEVEN)
        .into_iter()
        .filter(|i| !lost.contains(i))
        .collect();
    assert_eq!(got, rest, "the events after that page went out, in order");
    assert_eq!(em.spool_counters().damaged, lost.len() as u64);
    assert_eq!(em.pending(), 0);
}

#[test]
fn a_length_word_changed_on_the_only_page_is_set_aside_and_new_events_go_out() {
    let flash = filled(&["e1", "e2"]);
    let (mut em, link) = reopen(&flash);
    {
        let mut ram = flash.ram.borrow_mut();
        let r = record_of(ram.as_bytes(), "e1");
        ram.as_bytes_mut()[r.at] &= !0x04; // NOR: a bit clears
    }
    let got = drain(&mut em, &link);
    assert_eq!(got, Vec::<String>::new());
    assert_eq!(em.spool_counters().damaged, 2, "e1 and e2, once each");
    assert_eq!(em.pending(), 0, "nothing left stuck in the count");
    // New events still go out (and, while the link is down, through flash).
    link.down.set(true);
    for id in ["n1", "n2", "n3"] {
        em.emit(reading(id)).unwrap();
    }
    link.down.set(false);
    let got = drain(&mut em, &link);
    assert_eq!(got, ids(&["n1", "n2", "n3"]));
    assert_eq!(em.spool_counters().damaged, 2);
    assert_eq!(em.pending(), 0);
}

#[test]
fn a_length_word_changed_on_the_newest_page_being_written_is_set_aside() {
    // Spooled in this run: the page is the tail, records are still appended.
    let flash = Shared::default();
    let spool = FlashSpool::<_, 512>::open(flash.clone(), 0..FLASH as u32).unwrap();
    let link = Link::default();
    let mut em = emitter(spool, link.clone(), TestClock::default());
    link.down.set(true);
    for id in ["e1", "e2", "e3", "e4", "e5"] {
        em.emit(reading(id)).unwrap();
    }
    // The RAM batch holds copies of e1, e2; e3's length word changes.
    {
        let mut ram = flash.ram.borrow_mut();
        let r = record_of(ram.as_bytes(), "e3");
        ram.as_bytes_mut()[r.at + 1] &= !0x01;
    }
    em.emit(reading("e6")).unwrap();
    link.down.set(false);
    let got = drain(&mut em, &link);
    let c = em.counters();
    let s = em.spool_counters();
    let lost = 6 - got.len() as u64;
    assert!(got.starts_with(&ids(&["e1", "e2"])), "{got:?}");
    assert_eq!(
        lost, s.damaged,
        "every event not delivered counted damaged: {got:?} {s:?}"
    );
    assert_eq!(c.delivered, got.len() as u64);
    assert_eq!(em.pending(), 0);
}

#[test]
fn a_length_word_changed_on_the_oldest_page_is_counted_not_skipped() {
    let flash = filled(&SEVEN);
    let (mut em, link) = reopen(&flash);
    let lost = rest_of_page(&flash, "e1");
    assert!(lost.len() >= 2 && lost.len() < 7, "{lost:?}");
    {
        let mut ram = flash.ram.borrow_mut();
        let r = record_of(ram.as_bytes(), "e1");
        ram.as_bytes_mut()[r.at + 2] &= !0x10;
    }
    let got = drain(&mut em, &link);
    let rest: Vec<String> = ids(&SEVEN)
        .into_iter()
        .filter(|i| !lost.contains(i))
        .collect();
    assert_eq!(got, rest);
    assert_eq!(em.spool_counters().damaged, lost.len() as u64);
    assert_eq!(em.pending(), 0, "no event left counted in flash");
}
