//! `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date.
//!
//! HTTP-dates are read by `httpdate` in the preferred IMF-fixdate form and,
//! as RFC 9110 §5.6.7 asks of recipients, in the two obsolete forms too:
//!
//! ```text
//! Sun, 06 Nov 1994 08:49:37 GMT    IMF-fixdate
//! Sunday, 06-Nov-94 08:49:37 GMT   RFC 850 (two-digit year: 70-99 is 19xx, else 20xx)
//! Sun Nov  6 08:49:37 1994         asctime
//! ```
//!
//! A date it does not read (a wrong weekday, a year before 1970, a leap
//! second) is no answer, and the sink's own backoff applies.

use std::time::{Duration, SystemTime};

/// The wait `value` asks for, counted from `now`: delta-seconds as given
/// (saturating at `u64::MAX` seconds for absurdly long numbers), an HTTP-date
/// as the time left until it (zero when it has passed). `None` when `value`
/// is neither.
pub(crate) fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim_matches([' ', '\t']);
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        let secs = v.bytes().fold(0u64, |acc, b| {
            acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        });
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    /// 2024-06-01T12:00:00Z
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_717_243_200)
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(parse("120", now()), Some(Duration::from_secs(120)));
        assert_eq!(parse("0", now()), Some(Duration::ZERO));
        assert_eq!(parse(" 7\t", now()), Some(Duration::from_secs(7)));
        assert_eq!(parse("007", now()), Some(Duration::from_secs(7)));
    }

    #[test]
    fn huge_delta_saturates() {
        let huge = "99999999999999999999999999999999999999";
        assert_eq!(parse(huge, now()), Some(Duration::from_secs(u64::MAX)));
        assert_eq!(
            parse("18446744073709551615", now()),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse("18446744073709551616", now()),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn past_date_is_zero() {
        assert_eq!(
            parse("Fri, 31 Dec 1999 23:59:59 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse("Thu, 01 Jan 1970 00:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        // Before 1970 is no date httpdate reads: no answer, not "now".
        assert_eq!(parse("Mon, 01 Jan 1900 00:00:00 GMT", now()), None);
    }

    #[test]
    fn future_imf_fixdate() {
        assert_eq!(
            parse("Sat, 01 Jun 2024 12:00:30 GMT", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse("Sun, 02 Jun 2024 12:00:00 GMT", now()),
            Some(Duration::from_secs(86_400))
        );
        // Leap day and year boundary.
        let at = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29T00:00:00Z
        assert_eq!(
            parse("Wed, 01 Mar 2000 00:00:00 GMT", at),
            Some(Duration::from_secs(86_400))
        );
        let at = UNIX_EPOCH + Duration::from_secs(946_684_799); // 1999-12-31T23:59:59Z
        assert_eq!(
            parse("Sat, 01 Jan 2000 00:00:00 GMT", at),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn date_is_relative_to_now_with_sub_second_precision() {
        let at = now() + Duration::from_millis(250);
        assert_eq!(
            parse("Sat, 01 Jun 2024 12:00:10 GMT", at),
            Some(Duration::from_millis(9_750))
        );
    }

    #[test]
    fn obsolete_forms() {
        // RFC 850
        assert_eq!(
            parse("Saturday, 01-Jun-24 12:01:00 GMT", now()),
            Some(Duration::from_secs(60))
        );
        // Two-digit year more than 50 years ahead is in the past century.
        assert_eq!(
            parse("Sunday, 06-Nov-94 08:49:37 GMT", now()),
            Some(Duration::ZERO)
        );
        // asctime, space-padded day and two-digit day
        assert_eq!(
            parse("Sat Jun  1 12:00:05 2024", now()),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse("Mon Jun 10 12:00:00 2024", now()),
            Some(Duration::from_secs(9 * 86_400))
        );
        assert_eq!(
            parse("Sun Nov  6 08:49:37 1994", now()),
            Some(Duration::ZERO)
        );
        // All three forms name the same instant.
        let t0 = UNIX_EPOCH + Duration::from_secs(784_111_777 - 10); // 10 s before 1994-11-06T08:49:37Z
        let want = Some(Duration::from_secs(10));
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT", t0), want);
        assert_eq!(parse("Sunday, 06-Nov-94 08:49:37 GMT", t0), want);
        assert_eq!(parse("Sun Nov  6 08:49:37 1994", t0), want);
    }

    #[test]
    fn garbage_is_none() {
        for v in [
            "",
            "   ",
            "soon",
            "-5",
            "+5",
            "1.5",
            "12 s",
            "0x10",
            "Fri, 31 Dec 1999 23:59:59",
            "Fri, 31 Dec 1999 23:59:59 UTC",
            "Fri, 31 Dec 1999 23:59:59 GMT extra",
            "Fri, 32 Dec 1999 23:59:59 GMT",
            "Fri, 29 Feb 2023 00:00:00 GMT",
            "Fri, 31 Foo 1999 23:59:59 GMT",
            "Fri, 31 Dec 99 23:59:59 GMT",
            "Fri, 31 Dec 1999 24:00:00 GMT",
            "Fri, 31 Dec 1999 23:60:00 GMT",
            "Fri, 31 Dec 1999 23:59 GMT",
            "Fri, 1 Dec 1999 23:59:59 GMT",
            "Xyz, 31 Dec 1999 23:59:59 GMT",
            "Fri,31 Dec 1999 23:59:59 GMT",
            "Friday, 31-Dec-1999 23:59:59 GMT",
            "Friday, 31-Dec-99-1 23:59:59 GMT",
            "Fri Dec 31 23:59:59",
            "Fri Dec 311 23:59:59 1999",
            "Fri Dec 31 23:59:59 1999 GMT",
            "Fri",
            "Fri,",
            "Fri, ",
            ",",
            "€€€",
            // A weekday that is not that date's.
            "Sat, 31 Dec 1999 23:59:59 GMT",
        ] {
            assert_eq!(parse(v, now()), None, "{v:?}");
        }
    }

    #[test]
    fn far_future_dates_do_not_overflow() {
        assert_eq!(
            parse("Fri, 31 Dec 9999 23:59:59 GMT", now()),
            Some(Duration::from_secs(253_402_300_799 - 1_717_243_200))
        );
    }
}
