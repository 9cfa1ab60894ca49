//! `WhenFull::DropOldest` drops the oldest events, not the new one, also
//! when the flash holds fewer events than the RAM batch: the batch's own
//! events can then not all go to flash when the writer fails. (Found by a
//! review: every new event was refused with `SpoolFull` for the rest of
//! the outage, as with `DropNewest`.) And an event longer than the spool's
//! limit is refused as `TooLarge` (counted rejected) before any room is
//! made for it: not counted dropped, and no older event dropped for it.
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::rc::Rc;

use common::flash::{Link, Power, TestClock, fill_ids};
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::emitter::{Config, EmitError};
use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter, SpoolMode, WhenFull};
use ossa_events_core::{Event, RandomIds};

/// Two pages of 1 KiB: one ~500-byte event a page. The batch: 4 events, 2 KiB.
type Em = SpoolEmitter<
    'static,
    Link,
    RamFlash<2048, 1024>,
    RandomIds<fn(&mut [u8; 16])>,
    TestClock,
    4,
    2048,
    512,
>;

/// An event of about 500 bytes of JSON (the spool takes up to 512).
fn big<'a>(id: &'a str, data: &'a str) -> ossa_events_core::EventBuilder<'a> {
    Event::builder().id(id).ty("t").data_json(data)
}

fn setup(when_full: WhenFull) -> (Em, Link, TestClock) {
    let power = Rc::new(Power::default());
    let link = Link {
        power,
        ..Link::default()
    };
    let clock = TestClock::default();
    let spool = FlashSpool::<_, 512>::open(RamFlash::<2048, 1024>::new(), 0..2048)
        .unwrap()
        .mode(SpoolMode::WhenDown)
        .when_full(when_full);
    let config = Config::new("/devices/greenhouse-7")
        .batch_size(4)
        .flush_interval_ms(1000)
        .format(BatchFormat::JsonLines);
    let em: Em = SpoolEmitter::new(
        config,
        link.clone(),
        spool,
        RandomIds(fill_ids as fn(&mut [u8; 16])),
        clock.clone(),
    );
    (em, link, clock)
}

#[test]
fn drop_oldest_keeps_taking_new_events_when_the_flash_is_smaller_than_the_batch() {
    let (mut em, link, clock) = setup(WhenFull::DropOldest);
    link.down.set(true);
    let all: Vec<String> = (0..10).map(|i| format!("e{i}")).collect();
    let data = format!(r#"{{"note":"{}"}}"#, "x".repeat(350));
    for id in &all {
        em.emit(big(id, &data))
            .unwrap_or_else(|e| panic!("{id}: DropOldest refused the new event: {e:?}"));
    }
    link.down.set(false);
    clock.0.set(clock.0.get() + 1000);
    em.flush().unwrap();
    let got = common::read(BatchFormat::JsonLines, &link.out.borrow()).ids;
    let c = em.counters();
    assert_eq!(got.len() as u64, c.delivered, "{got:?} {c:?}");
    assert_eq!(c.delivered + c.dropped, 10, "{c:?}");
    assert_eq!(got.last(), all.last(), "the newest survives: {got:?}");
    assert_eq!(
        got,
        all[10 - got.len()..],
        "what survives is the newest, contiguous"
    );
}

#[test]
fn an_event_longer_than_the_spool_limit_is_refused_as_too_large_before_room_is_made() {
    for when_full in [WhenFull::DropNewest, WhenFull::DropOldest] {
        let (mut em, link, clock) = setup(when_full);
        link.down.set(true);
        let data = format!(r#"{{"note":"{}"}}"#, "x".repeat(350));
        // The batch is full (4), two of its events in flash, which is full.
        for id in ["e0", "e1", "e2", "e3"] {
            em.emit(big(id, &data)).unwrap();
        }
        assert_eq!((em.pending(), em.spool().len()), (4, 2));
        let before = em.counters();
        let huge = format!(r#"{{"note":"{}"}}"#, "x".repeat(600)); // > R, < B
        let err = em.emit(big("huge", &huge)).unwrap_err();
        assert!(matches!(err, EmitError::TooLarge), "{when_full:?}: {err:?}");
        let c = em.counters();
        assert_eq!(c.rejected, before.rejected + 1, "{when_full:?}: {c:?}");
        assert_eq!(
            c.dropped, before.dropped,
            "{when_full:?}: nothing dropped for it: {c:?}"
        );
        link.down.set(false);
        clock.0.set(clock.0.get() + 1000);
        em.flush().unwrap();
        let got = common::read(BatchFormat::JsonLines, &link.out.borrow()).ids;
        assert_eq!(got, ["e0", "e1", "e2", "e3"], "{when_full:?}");
    }
}
