//! `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date.
//!
//! HTTP-dates are read in the preferred IMF-fixdate form and, as RFC 9110
//! §5.6.7 asks of recipients, in the two obsolete forms too:
//!
//! ```text
//! Sun, 06 Nov 1994 08:49:37 GMT    IMF-fixdate
//! Sunday, 06-Nov-94 08:49:37 GMT   RFC 850 (two-digit year)
//! Sun Nov  6 08:49:37 1994         asctime
//! ```
//!
//! A few allocation-free lines instead of a date crate: the grammar is tiny
//! and the result only has to be a wait in whole seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    let at = http_date(v, now)?;
    if at <= 0 {
        return Some(Duration::ZERO);
    }
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(at).ok()?))?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Seconds since the Unix epoch of an HTTP-date in any of its three forms.
/// `now` resolves the century of an RFC 850 two-digit year.
fn http_date(v: &str, now: SystemTime) -> Option<i64> {
    let (day_name, rest) = v.split_once([',', ' '])?;
    match v.as_bytes().get(day_name.len()) {
        Some(b',') => {
            let rest = rest.strip_prefix(' ')?;
            if SHORT_DAYS.iter().any(|d| d.eq_ignore_ascii_case(day_name)) {
                imf_fixdate(rest)
            } else if LONG_DAYS.iter().any(|d| d.eq_ignore_ascii_case(day_name)) {
                rfc850(rest, now)
            } else {
                None
            }
        }
        _ => {
            if !SHORT_DAYS.iter().any(|d| d.eq_ignore_ascii_case(day_name)) {
                return None;
            }
            asctime(rest)
        }
    }
}

const SHORT_DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `06 Nov 1994 08:49:37 GMT`
fn imf_fixdate(s: &str) -> Option<i64> {
    let mut it = s.split(' ');
    let day = digits(it.next()?, 2)?;
    let month = month(it.next()?)?;
    let year = digits(it.next()?, 4)?;
    let secs = time_of_day(it.next()?)?;
    gmt_end(it)?;
    to_unix(i64::from(year), month, day, secs)
}

/// `06-Nov-94 08:49:37 GMT`
fn rfc850(s: &str, now: SystemTime) -> Option<i64> {
    let mut it = s.split(' ');
    let mut date = it.next()?.split('-');
    let day = digits(date.next()?, 2)?;
    let month = month(date.next()?)?;
    let yy = i64::from(digits(date.next()?, 2)?);
    if date.next().is_some() {
        return None;
    }
    let secs = time_of_day(it.next()?)?;
    gmt_end(it)?;
    // RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is
    // the most recent past year with the same last two digits.
    let this_year = year_of(now);
    let mut year = this_year - this_year.rem_euclid(100) + yy;
    if year > this_year + 50 {
        year -= 100;
    }
    to_unix(year, month, day, secs)
}

/// `Nov  6 08:49:37 1994` (day padded with a space; one space also accepted)
fn asctime(s: &str) -> Option<i64> {
    let mut it = s.split(' ').filter(|p| !p.is_empty());
    let month = month(it.next()?)?;
    let d = it.next()?;
    if d.is_empty() || d.len() > 2 {
        return None;
    }
    let day = digits(d, d.len())?;
    let secs = time_of_day(it.next()?)?;
    let year = digits(it.next()?, 4)?;
    if it.next().is_some() {
        return None;
    }
    to_unix(i64::from(year), month, day, secs)
}

fn gmt_end<'a>(mut it: impl Iterator<Item = &'a str>) -> Option<()> {
    match (it.next(), it.next()) {
        (Some("GMT"), None) => Some(()),
        _ => None,
    }
}

/// Exactly `n` ASCII digits.
fn digits(s: &str, n: usize) -> Option<u32> {
    if s.len() != n || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        s.bytes()
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0')),
    )
}

/// 1-based month number.
fn month(s: &str) -> Option<u32> {
    let i = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(s))?;
    u32::try_from(i + 1).ok()
}

/// `HH:MM:SS` as seconds into the day (a leap second, `:60`, is allowed).
fn time_of_day(s: &str) -> Option<i64> {
    let mut it = s.split(':');
    let h = digits(it.next()?, 2)?;
    let m = digits(it.next()?, 2)?;
    let sec = digits(it.next()?, 2)?;
    if it.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(i64::from(h * 3600 + m * 60 + sec))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn to_unix(year: i64, month: u32, day: u32, secs: i64) -> Option<i64> {
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + secs)
}

/// The civil (UTC) year `now` falls in.
fn year_of(now: SystemTime) -> i64 {
    let secs = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX / 2),
    };
    // Civil from days (inverse of `days_from_civil`), year only.
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let y = yoe + era * 400;
    if mp >= 10 {
        y + 1
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            parse("Mon, 01 Jan 1900 00:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
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

    #[test]
    fn year_of_matches_known_instants() {
        assert_eq!(year_of(UNIX_EPOCH), 1970);
        assert_eq!(year_of(now()), 2024);
        assert_eq!(year_of(UNIX_EPOCH + Duration::from_secs(946_684_799)), 1999);
        assert_eq!(year_of(UNIX_EPOCH + Duration::from_secs(946_684_800)), 2000);
        assert_eq!(year_of(UNIX_EPOCH - Duration::from_secs(1)), 1969);
    }
}
