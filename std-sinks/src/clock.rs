//! The system clock.

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
        let (secs, nanos) = match SystemTime::now().duration_since(UNIX_EPOCH) {
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
}
