//! A clock that steps back (an RTC reset to the epoch after a brown-out, an
//! NTP correction) must not hold pending events until it catches up with
//! the time of their emit: that can be decades. The wait starts over at the
//! first `poll` that sees the clock behind, so the superloop the docs show
//! (`poll`, then sleep `next_flush_in_ms`, then `poll` again) flushes one
//! interval later, as `next_flush_in_ms` promised.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::Cell;
use std::rc::Rc;

use ossa_events_core::emitter::{Config, Emitter};
use ossa_events_core::io::SliceWriter;
use ossa_events_core::{Clock, Event, RandomIds, Timestamp};

/// 2025-11-24, when the events are emitted.
const SYNCED_MS: i64 = 1_764_000_000_000;

#[derive(Clone, Default)]
struct Ms(Rc<Cell<i64>>);

impl Clock for Ms {
    fn now(&self) -> Timestamp {
        at(self.0.get())
    }
}

type Ids = RandomIds<fn(&mut [u8; 16])>;

/// An emitter of 8 events in 2 KiB writing into `out`, flushing every
/// second by `clock`.
fn emitter<C: Clock>(
    out: &mut [u8],
    clock: C,
) -> Emitter<'static, SliceWriter<'_>, Ids, C, 8, 2048> {
    let ids: Ids = RandomIds(|b| b.fill(3));
    Emitter::new(
        Config::new("/s").flush_interval_ms(1000),
        SliceWriter::new(out),
        ids,
        clock,
    )
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms).unwrap()
}

/// The superloop the docs show, from the epoch (where the stepped-back
/// clock reads): sleeps what `next_flush_in_ms` says, then polls, until a
/// poll sends something (4 rounds at most). Returns what that poll sent
/// and the time slept.
fn superloop<E>(
    em: &mut E,
    next_flush_in_ms: impl Fn(&E, i64) -> Option<u64>,
    poll: impl Fn(&mut E, i64) -> usize,
) -> (usize, u64) {
    let (mut now, mut slept) = (0, 0);
    for _ in 0..4 {
        let sleep = next_flush_in_ms(em, now).unwrap_or(u64::MAX);
        now += sleep as i64;
        slept += sleep;
        let sent = poll(em, now);
        if sent > 0 {
            return (sent, slept);
        }
    }
    (0, slept)
}

#[test]
fn the_emitter_flushes_one_interval_after_the_clock_stepped_back() {
    let clock = Ms::default();
    clock.0.set(SYNCED_MS);
    let mut out = [0u8; 2048];
    let mut em = emitter(&mut out, clock.clone());
    em.emit(Event::builder().ty("t")).unwrap();
    // The RTC lost its time: the clock reads the epoch from now on.
    clock.0.set(0);
    assert_eq!(
        em.poll(at(0)).unwrap(),
        0,
        "not due yet: the wait starts over"
    );
    let sleep = em.next_flush_in_ms(at(0)).unwrap();
    assert_eq!(sleep, 1000);
    assert_eq!(
        em.poll(at(1000)).unwrap(),
        1,
        "next_flush_in_ms said 1000 ms; the event is still pending"
    );
    assert_eq!(em.counters().delivered, 1);
}

/// `next_flush_in_ms` is how long a superloop may sleep before `poll`
/// flushes. When it sees the step back first (between a `poll` and the
/// superloop's next `next_flush_in_ms`), it says 0: the wait starts over at
/// the next `poll` (it takes `&self`), and a sleep of a whole interval
/// ended in a `poll` that only started the wait, the event going out a
/// second interval later than promised. (Found by the core review.)
#[test]
fn a_sleep_of_next_flush_in_ms_after_the_clock_stepped_back_ends_in_a_flush() {
    let mut out = [0u8; 2048];
    let mut em = emitter(&mut out, ossa_events_core::FixedClock(at(SYNCED_MS)));
    em.emit(Event::builder().ty("t")).unwrap();
    assert_eq!(em.poll(at(SYNCED_MS + 10)).unwrap(), 0, "not due yet");
    // The RTC loses its time during the superloop's work: it reads the
    // epoch from now on. The superloop sleeps as told, then polls.
    let (flushed, slept) = superloop(
        &mut em,
        |em, now| em.next_flush_in_ms(at(now)),
        |em, now| em.poll(at(now)).unwrap(),
    );
    assert_eq!(
        (flushed, slept),
        (1, 1000),
        "the event went out one interval after the clock stepped back"
    );
}

#[cfg(feature = "async")]
fn run<F: std::future::Future>(f: F) -> F::Output {
    common::poll_or_drop(f, 100).expect("the writer is always ready")
}

#[cfg(feature = "async")]
#[test]
fn the_async_emitter_flushes_one_interval_after_the_clock_stepped_back() {
    use ossa_events_core::emitter::AsyncEmitter;
    let clock = Ms::default();
    clock.0.set(SYNCED_MS);
    let mut out = [0u8; 2048];
    let ids: RandomIds<fn(&mut [u8; 16])> = RandomIds(|b| b.fill(3));
    let mut em: AsyncEmitter<'_, _, _, _, 8, 2048> = AsyncEmitter::new(
        Config::new("/s").flush_interval_ms(1000),
        &mut out[..],
        ids,
        clock.clone(),
    );
    run(em.emit(Event::builder().ty("t"))).unwrap();
    clock.0.set(0);
    assert_eq!(run(em.poll(at(0))).unwrap(), 0);
    assert_eq!(em.next_flush_in_ms(at(0)), Some(1000));
    assert_eq!(run(em.poll(at(1000))).unwrap(), 1);
}

#[cfg(feature = "flash-spool")]
#[test]
fn the_spool_tries_the_writer_again_one_interval_after_the_clock_stepped_back() {
    let (mut em, link) = failed_to_flash();
    // The link comes back; the clock has gone back to the epoch meanwhile.
    link.down.set(false);
    assert_eq!(
        em.poll(at(0)).unwrap(),
        0,
        "a failed writer waits an interval"
    );
    assert_eq!(em.next_flush_in_ms(at(0)), Some(1000));
    assert_eq!(
        em.poll(at(1000)).unwrap(),
        1,
        "next_flush_in_ms said 1000 ms; the event is still in flash"
    );
}

/// The same step back, seen first by `next_flush_in_ms` (the superloop
/// asks how long to sleep before its next `poll`): it says 0, the `poll`
/// then starts the writer's wait over, and the event goes out one interval
/// after the step. It said a whole interval, and the `poll` after that
/// sleep only started the wait: two intervals. (Found by the core review,
/// as the same fault of the plain emitter.)
#[cfg(feature = "flash-spool")]
#[test]
fn the_spool_keeps_next_flush_in_ms_when_it_sees_the_clock_step_back_first() {
    let (mut em, link) = failed_to_flash();
    link.down.set(false);
    let (sent, slept) = superloop(
        &mut em,
        |em, now| em.next_flush_in_ms(at(now)),
        |em, now| em.poll(at(now)).unwrap(),
    );
    assert_eq!((sent, slept), (1, 1000), "one interval after the step");
}

/// A spool emitter (clock synced) whose writer failed one event into
/// flash, and its link, down.
#[cfg(feature = "flash-spool")]
fn failed_to_flash() -> (common::flash::Em, common::flash::Link) {
    use common::flash::{linked, reading};
    use ossa_events_core::spool::{SpoolMode, WhenFull};

    let (mut em, link, _clock) = linked(4, SpoolMode::WhenDown, WhenFull::DropOldest);
    link.down.set(true);
    em.emit(reading("ev-0")).unwrap();
    assert!(em.flush().is_err());
    assert_eq!(em.spool().len(), 1, "the failed batch went to flash");
    (em, link)
}
