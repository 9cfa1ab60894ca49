//! `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date.
//!
//! HTTP-dates are read by `httpdate` in the preferred IMF-fixdate form and,
//! as RFC 9110 §5.6.7 asks of recipients, in the two obsolete forms too:
//!
//! ```text
//! Sun, 06 Nov 1994 08:49:37 GMT    IMF-fixdate
//! Sunday, 06-Nov-94 08:49:37 GMT   RFC 850 (two-digit year: the one within 50 years of now)
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
    let at = match rfc850_as_imf_fixdate(v, now) {
        Some(imf) => httpdate::parse_http_date(&imf).ok()?,
        None => httpdate::parse_http_date(v).ok()?,
    };
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An RFC 850 date rewritten as an IMF-fixdate, its two-digit year read as
/// RFC 9110 §5.6.7 asks: a year that appears more than 50 years ahead of
/// `now` is the most recent past one with those digits (`httpdate` alone
/// reads 70–99 as 19xx and 00–69 as 20xx whatever the date). `None` when
/// `v` is not of that form (the weekday is checked by `httpdate` then).
fn rfc850_as_imf_fixdate(v: &str, now: SystemTime) -> Option<String> {
    const DAYS: [(&str, &str); 7] = [
        ("Monday", "Mon"),
        ("Tuesday", "Tue"),
        ("Wednesday", "Wed"),
        ("Thursday", "Thu"),
        ("Friday", "Fri"),
        ("Saturday", "Sat"),
        ("Sunday", "Sun"),
    ];
    let (day, rest) = v.split_once(", ")?;
    let (_, short) = DAYS.iter().find(|(long, _)| *long == day)?;
    // "06-Nov-94 08:49:37 GMT"
    let b = rest.as_bytes();
    if b.len() != 22 || b[2] != b'-' || b[6] != b'-' || b[9] != b' ' {
        return None;
    }
    let yy = rest.get(7..9)?;
    if !yy.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let yy: u64 = yy.parse().ok()?;
    let this = year_of(now)?;
    let mut year = this - this % 100 + yy;
    if year > this + 50 {
        year -= 100;
    } else if year + 50 < this {
        year += 100;
    }
    Some(format!(
        "{short}, {} {} {year} {}",
        rest.get(0..2)?,
        rest.get(3..6)?,
        rest.get(10..)?
    ))
}

/// The UTC year of `now` (`None` before 1970). Civil-from-days, after
/// H. Hinnant's `chrono`-compatible algorithms (no panic at any instant,
/// unlike `httpdate`'s formatter past the year 9999).
fn year_of(now: SystemTime) -> Option<u64> {
    let days = now.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() / 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    Some(yoe + era * 400 + u64::from(mp >= 10))
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
    fn rfc850_two_digit_years_are_read_within_50_years_of_now() {
        // 2026-12-06T00:00:00Z
        let now = UNIX_EPOCH + Duration::from_secs(1_796_515_200);
        // 2070-01-01 is a Wednesday, 44 years ahead: 2070, not 1970
        // (RFC 9110 §5.6.7: only more than 50 years ahead is the past).
        assert_eq!(
            parse("Wednesday, 01-Jan-70 00:00:00 GMT", now),
            Some(Duration::from_secs(3_155_760_000 - 1_796_515_200))
        );
        // 1970-01-01 was a Thursday: read as 2070, that weekday is wrong.
        assert_eq!(parse("Thursday, 01-Jan-70 00:00:00 GMT", now), None);
        // More than 50 years ahead: the past century.
        assert_eq!(
            parse("Sunday, 06-Nov-94 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        // Tomorrow.
        assert_eq!(
            parse("Monday, 07-Dec-26 00:00:00 GMT", now),
            Some(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn year_of_now() {
        let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(year_of(at(0)), Some(1970));
        assert_eq!(year_of(at(951_782_399)), Some(2000)); // 2000-02-28T23:59:59Z
        assert_eq!(year_of(at(946_684_799)), Some(1999));
        assert_eq!(year_of(at(946_684_800)), Some(2000));
        assert_eq!(year_of(at(1_796_515_200)), Some(2026));
        assert_eq!(year_of(at(253_402_300_799)), Some(9999));
        assert_eq!(year_of(at(253_402_300_800)), Some(10_000));
        assert!(year_of(at(1 << 62)).is_some()); // no overflow
        assert_eq!(year_of(UNIX_EPOCH - Duration::from_secs(1)), None);
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
