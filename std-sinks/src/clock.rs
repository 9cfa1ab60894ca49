//! The system clock.

#[cfg(feature = "tracing")]
use std::time::Instant;
use std::time::{SystemTime, UNIX_EPOCH};

use ossa_events_core::{Clock, Timestamp};

/// The operating system's wall clock, in UTC with microsecond precision.
///
/// ```
/// use ossa_events::{Clock, Event, SystemClock};
/// let now = SystemClock.now();
/// assert_eq!(now.frac_digits(), 6); // microseconds
/// let ev = Event::builder().id("e-1").source("/agents/a").ty("dev.example.tick").time_from(&SystemClock).build()?;
/// assert!(ev.time().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        timestamp(SystemTime::now())
    }
}

/// `t` as a timestamp, in UTC with microsecond precision.
fn timestamp(t: SystemTime) -> Timestamp {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            // Before 1970: count backwards.
            let d = e.duration();
            let n = d.subsec_nanos();
            if n == 0 {
                (-(d.as_secs() as i64), 0)
            } else {
                (-(d.as_secs() as i64) - 1, 1_000_000_000 - n)
            }
        }
    };
    Timestamp::from_unix(secs, nanos - nanos % 1000)
        .map(|t| t.with_frac_digits(6))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The wall-clock time of `at`, a moment of the monotonic clock in the
/// past: the wall clock now, less the time since. What `OssaLayer` dates
/// its events with, so the thread a span ran on reads only the monotonic
/// clock (one read where it needs one anyway).
#[cfg(feature = "tracing")]
pub(crate) fn wall_time(at: Instant) -> Timestamp {
    let since = at.elapsed();
    let now = SystemTime::now();
    timestamp(now.checked_sub(since).unwrap_or(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_recent_utc_with_micros() {
        let t = SystemClock.now();
        assert!(t.year() >= 2024);
        assert_eq!(t.frac_digits(), 6);
        assert_eq!(t.offset(), ossa_events_core::Offset::Utc);
        assert_eq!(t.to_string().len(), "2026-11-25T15:24:00.000000Z".len());
    }

    #[cfg(feature = "tracing")]
    #[test]
    fn wall_time_of_a_past_instant_is_that_long_ago() {
        let ms = |t: Timestamp| t.unix_seconds() * 1000 + i64::from(t.nanos() / 1_000_000);
        // Between the wall clock read just before the instant and the one
        // just after (within a millisecond). A thread preempted between two
        // of the reads (on a loaded machine) is not what is tested: up to
        // five tries, each 30 ms after its instant. (A wrong sign or unit
        // would be 30 ms or more off in every one.)
        let mut tries = Vec::new();
        for _ in 0..5 {
            let before = SystemClock.now();
            let at = std::time::Instant::now();
            let after = SystemClock.now();
            std::thread::sleep(std::time::Duration::from_millis(30));
            let t = wall_time(at);
            if ms(before) - 1 <= ms(t) && ms(t) <= ms(after) + 1 {
                return;
            }
            tries.push(format!("{t} not in {before}..{after}"));
        }
        panic!("{tries:?}");
    }
}
