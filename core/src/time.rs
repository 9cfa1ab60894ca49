//! RFC 3339 timestamps: an allocation-free parser and formatter.
//!
//! CloudEvents' `Timestamp` type (spec "Type System") is encoded as an
//! [RFC 3339] `date-time`. [`Timestamp`] keeps the fields as written (including
//! the UTC offset and the number of fraction digits) so that a parsed value
//! writes back exactly as it was received when the input is in canonical form,
//! and it converts to and from Unix time.
//!
//! `no_std` has no clock; callers supply one through the [`Clock`] trait.
//!
//! [RFC 3339]: https://www.rfc-editor.org/rfc/rfc3339

use core::fmt;
use core::str::FromStr;

/// Seconds from 1970-01-01T00:00:00Z to 0000-01-01T00:00:00Z.
const MIN_UNIX: i64 = -62_167_219_200;
/// Seconds from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const MAX_UNIX: i64 = 253_402_300_799;
/// Powers of ten used to truncate nanoseconds to a number of fraction digits.
const POW10: [u32; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// An RFC 3339 timestamp (`date-time`, RFC 3339 §5.6) in the proleptic
/// Gregorian calendar, years 0000 to 9999, with nanosecond precision.
///
/// The value remembers its UTC [`Offset`] and how many fraction-of-second
/// digits it is written with ([`frac_digits`](Self::frac_digits)); the stored
/// nanoseconds are always a multiple of `10^(9 - frac_digits)`, so
/// [`write_to`](Self::write_to) / [`Display`](fmt::Display) never lose
/// information. Equality (`==`) compares these fields as written; use
/// [`same_instant`](Self::same_instant) to compare points in time.
///
/// ```
/// use ossa_events_core::time::{Offset, Timestamp};
///
/// let t = Timestamp::parse("2018-04-05T19:31:00.120+02:00")?;
/// assert_eq!(t.offset(), Offset::Minutes(120));
/// assert_eq!(t.unix_seconds(), 1_522_949_460);
///
/// let mut buf = [0u8; Timestamp::MAX_LEN];
/// assert_eq!(t.write_to(&mut buf), "2018-04-05T19:31:00.120+02:00");
///
/// let utc = Timestamp::from_unix_millis(1_522_949_460_120).unwrap();
/// assert_eq!(utc.to_string(), "2018-04-05T17:31:00.120Z");
/// assert!(utc.same_instant(&t));
/// # Ok::<(), ossa_events_core::time::TimeError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timestamp {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    nanos: u32,
    frac_digits: u8,
    offset: Offset,
}

/// The UTC offset of a [`Timestamp`] (RFC 3339 §4.2, §4.3).
///
/// ```
/// use ossa_events_core::{Offset, Timestamp};
/// assert_eq!(Timestamp::parse("2026-01-01T00:00:00Z")?.offset(), Offset::Utc);
/// assert_eq!(Timestamp::parse("2026-01-01T00:00:00+05:30")?.offset(), Offset::Minutes(330));
/// assert_eq!(Timestamp::parse("2026-01-01T00:00:00-00:00")?.offset(), Offset::Unknown);
/// # Ok::<(), ossa_events_core::TimeError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Offset {
    /// `Z`: UTC.
    Utc,
    /// `+hh:mm` / `-hh:mm`, in minutes east of UTC (never the `-00:00` form;
    /// `+00:00` is `Minutes(0)`). At most 23:59 either way.
    Minutes(i16),
    /// `-00:00`: the time is in UTC, the local offset is unknown
    /// (RFC 3339 §4.3).
    Unknown,
}

impl Offset {
    /// Minutes east of UTC (0 for [`Offset::Utc`] and [`Offset::Unknown`]).
    ///
    /// ```
    /// use ossa_events_core::Offset;
    /// assert_eq!(Offset::Minutes(-480).minutes(), -480); // -08:00
    /// assert_eq!(Offset::Unknown.minutes(), 0);
    /// ```
    #[inline]
    pub const fn minutes(self) -> i16 {
        match self {
            Offset::Minutes(m) => m,
            Offset::Utc | Offset::Unknown => 0,
        }
    }
}

/// Why a string is not an RFC 3339 `date-time`, or why timestamp fields are
/// out of range.
///
/// ```
/// use ossa_events_core::{TimeError, Timestamp};
/// assert_eq!(Timestamp::parse("2026-02-29T00:00:00Z"), Err(TimeError::Day)); // not a leap year
/// assert_eq!(Timestamp::parse("2026-01-01 00:00:00Z"), Err(TimeError::Syntax { at: 10 }));
/// assert_eq!(Timestamp::parse("2026-01-01T00:00:00"), Err(TimeError::Syntax { at: 19 })); // offset required
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeError {
    /// The text does not follow the `date-time` syntax; `at` is the byte
    /// offset of the first unexpected (or missing) character.
    Syntax {
        /// Byte offset of the first bad or missing character.
        at: usize,
    },
    /// The year is above 9999 (only from [`Timestamp::new`]).
    Year,
    /// The month is not 01-12.
    Month,
    /// The day is 00 or past the end of the month.
    Day,
    /// The hour is not 00-23.
    Hour,
    /// The minute is not 00-59.
    Minute,
    /// The second is not 00-60.
    Second,
    /// Second 60 (a leap second) at a time that is not 23:59 UTC.
    LeapSecond,
    /// The nanoseconds are 1 000 000 000 or more (only from
    /// [`Timestamp::new`]).
    Nanosecond,
    /// The offset hour is not 00-23.
    OffsetHour,
    /// The offset minute is not 00-59.
    OffsetMinute,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeError::Syntax { at } => {
                write!(f, "invalid rfc 3339 timestamp syntax at byte {at}")
            }
            TimeError::Year => f.write_str("year out of range 0000-9999"),
            TimeError::Month => f.write_str("month out of range 01-12"),
            TimeError::Day => f.write_str("day out of range for the month"),
            TimeError::Hour => f.write_str("hour out of range 00-23"),
            TimeError::Minute => f.write_str("minute out of range 00-59"),
            TimeError::Second => f.write_str("second out of range 00-60"),
            TimeError::LeapSecond => f.write_str("leap second not at 23:59 utc"),
            TimeError::Nanosecond => f.write_str("nanoseconds out of range"),
            TimeError::OffsetHour => f.write_str("utc offset hour out of range 00-23"),
            TimeError::OffsetMinute => f.write_str("utc offset minute out of range 00-59"),
        }
    }
}

impl core::error::Error for TimeError {}

/// Whether `year` is a leap year in the Gregorian calendar.
#[inline]
const fn is_leap(year: u16) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

/// Number of days in `month` (1-12) of `year`; 0 for an invalid month.
#[inline]
const fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
///
/// `year` is within 0000-10000 (what a [`Timestamp`] holds, and one past
/// it for the range's end), so the arithmetic fits `i32`: no 64-bit
/// division routine on 32-bit targets.
#[inline]
const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let (year, month, day) = (year as i32, month as i32, day as i32);
    let y = if month <= 2 { year - 1 } else { year };
    // y >= -1: a floor division only for y = -1 (January/February of 0000).
    let era = if y >= 0 { y / 400 } else { (y - 399) / 400 };
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) as i64
}

/// The proleptic Gregorian date `(year, month, day)` of a day count since
/// 1970-01-01 (H. Hinnant's `civil_from_days`).
///
/// `days` is within years 0000-9999 (what `from_unix` accepts), so the
/// arithmetic fits `i32`: no 64-bit division routine on 32-bit targets.
#[inline]
const fn civil_from_days(days: i64) -> (i64, u8, u8) {
    // days >= -719_528 (0000-01-01): z >= -60; era = -1 only for the
    // first 60 days of year 0000 (a floor division).
    let z = (days + 719_468) as i32;
    let era = if z >= 0 {
        z / 146_097
    } else {
        (z - 146_096) / 146_097
    };
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year as i64, month, day)
}

/// The ASCII digit at `i`, or a syntax error pointing at `i`.
#[inline]
fn digit(b: &[u8], i: usize) -> Result<u8, TimeError> {
    match b.get(i) {
        Some(&c) if c.is_ascii_digit() => Ok(c - b'0'),
        _ => Err(TimeError::Syntax { at: i }),
    }
}

/// Two ASCII digits at `i` as a number.
#[inline]
fn two(b: &[u8], i: usize) -> Result<u8, TimeError> {
    Ok(digit(b, i)? * 10 + digit(b, i + 1)?)
}

/// The fields of `YYYY-MM-DDTHH:MM:SS` at the start of `b` (the century
/// and the year in it, then month, day, hour, minute, second), each checked
/// to be digits and the separators in place; the error names the first
/// byte that is not.
fn date_time(b: &[u8]) -> Result<[u8; 7], TimeError> {
    let century = two(b, 0)?;
    let yy = two(b, 2)?;
    expect(b, 4, b'-', b'-')?;
    let month = two(b, 5)?;
    expect(b, 7, b'-', b'-')?;
    let day = two(b, 8)?;
    expect(b, 10, b'T', b't')?;
    let hour = two(b, 11)?;
    expect(b, 13, b':', b':')?;
    let minute = two(b, 14)?;
    expect(b, 16, b':', b':')?;
    let second = two(b, 17)?;
    Ok([century, yy, month, day, hour, minute, second])
}

/// [`date_time`] for the common case, every byte as it should be (with an
/// upper-case `T`), without a branch per byte: `None` sends anything else
/// to `date_time`, which names the byte at fault. A third of the
/// instructions of building and encoding an event's `time` went to the
/// byte-by-byte form.
#[inline]
fn date_time_fast(b: &[u8]) -> Option<[u8; 7]> {
    let h = b.first_chunk::<19>()?;
    // Digits less '0' (a non-digit wraps to 10 or more).
    let d = [
        h[0], h[1], h[2], h[3], h[5], h[6], h[8], h[9], h[11], h[12], h[14], h[15], h[17], h[18],
    ]
    .map(|c| c.wrapping_sub(b'0'));
    let not_digit = d.iter().fold(false, |acc, &x| acc | (x > 9));
    let seps = (h[4] ^ b'-') | (h[7] ^ b'-') | (h[10] ^ b'T') | (h[13] ^ b':') | (h[16] ^ b':');
    if not_digit || seps != 0 {
        return None;
    }
    let two = |i: usize| d[i] * 10 + d[i + 1];
    Some([two(0), two(2), two(4), two(6), two(8), two(10), two(12)])
}

/// Expects one of the bytes `x` or `y` at `i`.
#[inline]
fn expect(b: &[u8], i: usize, x: u8, y: u8) -> Result<(), TimeError> {
    match b.get(i) {
        Some(&c) if c == x || c == y => Ok(()),
        _ => Err(TimeError::Syntax { at: i }),
    }
}

/// Writes `v` (0-99) as two ASCII digits.
#[inline]
fn put2(out: &mut [u8], v: u8) {
    if let [a, b, ..] = out {
        *a = b'0' + v / 10 % 10;
        *b = b'0' + v % 10;
    }
}

impl Timestamp {
    /// The longest canonical form, `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+HH:MM`.
    pub const MAX_LEN: usize = 35;

    /// 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        frac_digits: 0,
        offset: Offset::Utc,
    };

    /// Builds a timestamp from its fields, validating them like
    /// [`parse`](Self::parse) does. `frac_digits` is 0 when `nanos` is 0 and
    /// otherwise the fewest digits (up to 9) that show `nanos` exactly.
    ///
    /// ```
    /// use ossa_events_core::{Offset, TimeError, Timestamp};
    /// let t = Timestamp::new(2026, 3, 1, 9, 30, 0, 500_000_000, Offset::Minutes(60))?;
    /// assert_eq!(t.to_string(), "2026-03-01T09:30:00.5+01:00");
    /// assert_eq!(Timestamp::new(2026, 4, 31, 0, 0, 0, 0, Offset::Utc), Err(TimeError::Day));
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        nanos: u32,
        offset: Offset,
    ) -> Result<Timestamp, TimeError> {
        if year > 9999 {
            return Err(TimeError::Year);
        }
        if nanos >= 1_000_000_000 {
            return Err(TimeError::Nanosecond);
        }
        let (oh, om) = match offset {
            Offset::Minutes(m) => (m.unsigned_abs() / 60, m.unsigned_abs() % 60),
            Offset::Utc | Offset::Unknown => (0, 0),
        };
        let mut frac_digits = 9u8;
        let mut n = nanos;
        while frac_digits > 0 && n.is_multiple_of(10) {
            n /= 10;
            frac_digits -= 1;
        }
        let t = Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            frac_digits,
            offset,
        };
        t.validate(oh, om)?;
        Ok(t)
    }

    /// Parses an RFC 3339 `date-time` (§5.6), e.g.
    /// `1985-04-12T23:20:50.52Z` or `1996-12-19T16:39:57-08:00`.
    ///
    /// Exact grammar: `T`/`t` separator (a space is rejected), optional
    /// fraction of one or more digits (digits past the ninth are truncated),
    /// `Z`/`z` or `+hh:mm`/`-hh:mm`. Second 60 is accepted only when the time
    /// in UTC is 23:59 (RFC 3339 §5.7). Nothing may follow the offset.
    ///
    /// ```
    /// use ossa_events_core::{TimeError, Timestamp};
    /// let t = Timestamp::parse("1985-04-12T23:20:50.52Z")?;
    /// assert_eq!((t.year(), t.nanos(), t.frac_digits()), (1985, 520_000_000, 2));
    /// // Leap seconds only at 23:59 UTC.
    /// assert!(Timestamp::parse("1990-12-31T23:59:60Z").is_ok());
    /// assert_eq!(Timestamp::parse("1990-12-31T12:59:60Z"), Err(TimeError::LeapSecond));
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    pub fn parse(s: &str) -> Result<Timestamp, TimeError> {
        Self::parse_bytes(s.as_bytes())
    }

    /// [`parse`](Self::parse) on bytes (non-ASCII bytes are syntax errors).
    ///
    /// ```
    /// use ossa_events_core::{TimeError, Timestamp};
    /// // E.g. straight from a `ce-time` header value.
    /// let header: &[u8] = b"2026-01-01T12:00:00Z";
    /// assert_eq!(Timestamp::parse_bytes(header)?.hour(), 12);
    /// assert_eq!(Timestamp::parse_bytes(b"2026-01-01T12:00:00\xff"), Err(TimeError::Syntax { at: 19 }));
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    pub fn parse_bytes(b: &[u8]) -> Result<Timestamp, TimeError> {
        let [century, yy, month, day, hour, minute, second] = match date_time_fast(b) {
            Some(fields) => fields,
            None => date_time(b)?,
        };
        let year = u16::from(century) * 100 + u16::from(yy);

        let mut pos = 19;
        let mut nanos = 0u32;
        let mut frac_digits = 0u8;
        if b.get(pos) == Some(&b'.') {
            pos += 1;
            let start = pos;
            while let Some(&c) = b.get(pos) {
                if !c.is_ascii_digit() {
                    break;
                }
                if frac_digits < 9 {
                    nanos = nanos * 10 + u32::from(c - b'0');
                    frac_digits += 1;
                }
                pos += 1;
            }
            if pos == start {
                return Err(TimeError::Syntax { at: pos });
            }
            nanos *= POW10[9 - frac_digits as usize];
        }

        let (offset, oh, om) = match b.get(pos) {
            Some(b'Z' | b'z') => {
                pos += 1;
                (Offset::Utc, 0, 0)
            }
            Some(&sign @ (b'+' | b'-')) => {
                let oh = two(b, pos + 1)?;
                expect(b, pos + 3, b':', b':')?;
                let om = two(b, pos + 4)?;
                pos += 6;
                let m = i16::from(oh) * 60 + i16::from(om);
                let offset = match (sign, m) {
                    (b'-', 0) => Offset::Unknown,
                    (b'-', m) => Offset::Minutes(-m),
                    (_, m) => Offset::Minutes(m),
                };
                (offset, oh, om)
            }
            _ => return Err(TimeError::Syntax { at: pos }),
        };
        if pos != b.len() {
            return Err(TimeError::Syntax { at: pos });
        }

        let t = Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            frac_digits,
            offset,
        };
        t.validate(u16::from(oh), u16::from(om))?;
        Ok(t)
    }

    /// Range checks shared by [`new`](Self::new) and [`parse`](Self::parse).
    fn validate(&self, oh: u16, om: u16) -> Result<(), TimeError> {
        if !(1..=12).contains(&self.month) {
            return Err(TimeError::Month);
        }
        if self.day == 0 || self.day > days_in_month(self.year, self.month) {
            return Err(TimeError::Day);
        }
        if self.hour > 23 {
            return Err(TimeError::Hour);
        }
        if self.minute > 59 {
            return Err(TimeError::Minute);
        }
        if self.second > 60 {
            return Err(TimeError::Second);
        }
        if oh > 23 {
            return Err(TimeError::OffsetHour);
        }
        if om > 59 {
            return Err(TimeError::OffsetMinute);
        }
        if self.second == 60 {
            let local = i32::from(self.hour) * 60 + i32::from(self.minute);
            let utc = (local - i32::from(self.offset.minutes())).rem_euclid(1440);
            if utc != 23 * 60 + 59 {
                return Err(TimeError::LeapSecond);
            }
        }
        Ok(())
    }

    /// The UTC timestamp (`Z`) `secs` seconds and `nanos` nanoseconds after
    /// 1970-01-01T00:00:00Z, written with 0 fraction digits when `nanos` is 0
    /// and 9 otherwise. `None` when the year would fall outside 0000-9999 or
    /// `nanos >= 1_000_000_000`.
    ///
    /// ```
    /// use ossa_events_core::Timestamp;
    /// let t = Timestamp::from_unix(1_700_000_000, 0).ok_or("out of range")?;
    /// assert_eq!(t.to_string(), "2023-11-14T22:13:20Z");
    /// let t = Timestamp::from_unix(0, 1).ok_or("out of range")?;
    /// assert_eq!(t.to_string(), "1970-01-01T00:00:00.000000001Z");
    /// assert!(Timestamp::from_unix(i64::MAX, 0).is_none()); // past year 9999
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_unix(secs: i64, nanos: u32) -> Option<Timestamp> {
        if !(MIN_UNIX..=MAX_UNIX).contains(&secs) || nanos >= 1_000_000_000 {
            return None;
        }
        // 86 400 = 128 * 675: floor division by each in turn (a shift and a
        // 16-bit divisor), so no 64-bit division routine on 32-bit targets.
        let days = crate::num::div_rem_euclid_i64(secs >> 7, 675).0;
        // In 0..86_400.
        let sod = (secs - days * 86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Some(Timestamp {
            year: year as u16,
            month,
            day,
            hour: (sod / 3600) as u8,
            minute: (sod / 60 % 60) as u8,
            second: (sod % 60) as u8,
            nanos,
            frac_digits: if nanos == 0 { 0 } else { 9 },
            offset: Offset::Utc,
        })
    }

    /// The UTC timestamp `ms` milliseconds after the Unix epoch, written with
    /// 3 fraction digits (0 when it is a whole second). `None` outside years
    /// 0000-9999.
    ///
    /// ```
    /// use ossa_events_core::Timestamp;
    /// // E.g. from a monotonic tick counter plus a boot-time offset.
    /// let t = Timestamp::from_unix_millis(1_700_000_000_042).ok_or("out of range")?;
    /// assert_eq!(t.to_string(), "2023-11-14T22:13:20.042Z");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_unix_millis(ms: i64) -> Option<Timestamp> {
        let (secs, millis) = crate::num::div_rem_euclid_i64(ms, 1000);
        let t = Self::from_unix(secs, millis * 1_000_000)?;
        Some(t.with_frac_digits(if millis == 0 { 0 } else { 3 }))
    }

    /// The same timestamp written with `d` fraction digits (clamped to
    /// 0..=9). Reducing the digit count truncates the stored nanoseconds, so
    /// the value always equals what it displays.
    ///
    /// ```
    /// # use ossa_events_core::Timestamp;
    ///
    /// let t = Timestamp::parse("2026-01-01T00:00:00.123456789Z")?;
    /// assert_eq!(t.with_frac_digits(3).to_string(), "2026-01-01T00:00:00.123Z");
    /// assert_eq!(t.with_frac_digits(0).nanos(), 0); // truncated, not rounded
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    #[must_use]
    pub fn with_frac_digits(mut self, d: u8) -> Self {
        let d = d.min(9);
        let p = POW10[9 - d as usize];
        self.nanos -= self.nanos % p;
        self.frac_digits = d;
        self
    }

    /// Writes the canonical RFC 3339 form into `buf` and returns it: upper
    /// case `T` and `Z`, exactly [`frac_digits`](Self::frac_digits) fraction
    /// digits, `-00:00` for [`Offset::Unknown`].
    ///
    /// ```
    /// # use ossa_events_core::Timestamp;
    ///
    /// let t = Timestamp::parse("2026-01-01t08:00:00z")?;
    /// let mut buf = [0u8; Timestamp::MAX_LEN]; // no allocation
    /// assert_eq!(t.write_to(&mut buf), "2026-01-01T08:00:00Z"); // canonical upper case
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    pub fn write_to<'b>(&self, buf: &'b mut [u8; Timestamp::MAX_LEN]) -> &'b str {
        let n = self.encode(buf);
        match buf.get(..n).map(core::str::from_utf8) {
            Some(Ok(s)) => s,
            _ => "",
        }
    }

    /// Writes the canonical form to `w`, as the ASCII bytes it is (no
    /// `&str`, so no UTF-8 check).
    pub(crate) fn write_ascii<W: embedded_io::Write + ?Sized>(
        &self,
        w: &mut W,
    ) -> Result<(), crate::io::WriteError<W::Error>> {
        let mut buf = [0u8; Timestamp::MAX_LEN];
        let n = self.encode(&mut buf);
        crate::io::write_all(w, buf.get(..n).unwrap_or(&[]))
    }

    /// Writes the canonical form (ASCII) into `buf`, returning its length.
    pub(crate) fn encode(&self, buf: &mut [u8; Timestamp::MAX_LEN]) -> usize {
        self.encode_date_time(buf);
        let mut pos = 19;
        let fd = usize::from(self.frac_digits.min(9));
        if fd > 0 {
            buf[19] = b'.';
            let mut n = self.nanos / POW10[9 - fd];
            // `get_mut`, not indexing: 20 + 9 < MAX_LEN, but the compiler
            // does not see it and would link a panic path into the firmware.
            for slot in buf.get_mut(20..20 + fd).into_iter().flatten().rev() {
                *slot = b'0' + (n % 10) as u8;
                n /= 10;
            }
            pos = 20 + fd;
        }
        let m = match self.offset {
            Offset::Utc => {
                buf[pos] = b'Z';
                return pos + 1;
            }
            Offset::Unknown => {
                buf[pos] = b'-';
                0
            }
            Offset::Minutes(m) => {
                buf[pos] = if m < 0 { b'-' } else { b'+' };
                m.unsigned_abs()
            }
        };
        // pos <= 29, so the tail fits (`get_mut`: see the fraction above).
        let Some(tail) = buf.get_mut(pos + 1..pos + 6) else {
            return pos + 1;
        };
        put2(tail, (m / 60 % 100) as u8);
        if let Some(c) = tail.get_mut(2) {
            *c = b':';
        }
        if let Some(t) = tail.get_mut(3..) {
            put2(t, (m % 60) as u8);
        }
        pos + 6
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS` into `buf[..19]`: on 32-bit targets (the
    /// devices) [`encode_date_time_compact`](Self::encode_date_time_compact).
    #[cfg(not(target_pointer_width = "64"))]
    #[inline]
    fn encode_date_time(&self, buf: &mut [u8; Timestamp::MAX_LEN]) {
        self.encode_date_time_compact(buf);
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS` into `buf[..19]` with one loop over the
    /// seven two-digit fields, into a copy of the separators' template: the
    /// form for flash (the firmware example's image: 84 B less than writing
    /// each field in line).
    #[cfg(any(test, not(target_pointer_width = "64")))]
    fn encode_date_time_compact(&self, buf: &mut [u8; Timestamp::MAX_LEN]) {
        let y = self.year;
        let fields = [
            (y / 100 % 100) as u8,
            (y % 100) as u8,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
        ];
        if let Some(text) = buf.first_chunk_mut::<19>() {
            *text = *b"0000-00-00T00:00:00";
            for (i, v) in fields.into_iter().enumerate() {
                // Field i's first digit: at 0, 2, then every third byte.
                let at = (3 * i).saturating_sub(1);
                put2(text.get_mut(at..).unwrap_or(&mut []), v);
            }
        }
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS` into `buf[..19]`: on 64-bit targets the
    /// seven two-digit fields split into digits four at a time, one 16-bit
    /// lane each (`v * 103 >> 10` is `v / 10` for `v < 179`; every field is
    /// below 100, so no lane carries into the next), and the text is three
    /// stores rather than 14 divisions by ten (callgrind: `encode` of a
    /// whole-second UTC time, 145 -> 88 instructions).
    #[cfg(target_pointer_width = "64")]
    #[inline]
    fn encode_date_time(&self, buf: &mut [u8; Timestamp::MAX_LEN]) {
        const LANES: u64 = 0x000f_000f_000f_000f;
        /// Each 16-bit lane's value `v` as the ASCII pair of its digits.
        fn pairs(x: u64) -> u64 {
            let tens = ((x * 103) >> 10) & LANES;
            let units = x - tens * 10;
            (tens | units << 8) + 0x3030_3030_3030_3030
        }
        let lanes = |a: u8, b: u8, c: u8, d: u8| {
            u64::from(a) | u64::from(b) << 16 | u64::from(c) << 32 | u64::from(d) << 48
        };
        let y = self.year;
        let date = pairs(lanes(
            (y / 100 % 100) as u8,
            (y % 100) as u8,
            self.month,
            self.day,
        ));
        let time = pairs(lanes(self.hour, self.minute, self.second, 0));
        // "YYYY-MM-", "DD", "T", "HH:MM:SS".
        let ymm = date & 0xffff_ffff
            | u64::from(b'-') << 32
            | (date >> 32 & 0xffff) << 40
            | u64::from(b'-') << 56;
        let hms = time & 0xffff
            | u64::from(b':') << 16
            | (time >> 16 & 0xffff) << 24
            | u64::from(b':') << 40
            | (time >> 32 & 0xffff) << 48;
        let (head, rest) = buf.split_at_mut(8);
        head.copy_from_slice(&ymm.to_le_bytes());
        if let Some((dd, rest)) = rest.split_first_chunk_mut::<3>() {
            *dd = [(date >> 48) as u8, (date >> 56) as u8, b'T'];
            if let Some(t) = rest.first_chunk_mut::<8>() {
                *t = hms.to_le_bytes();
            }
        }
    }

    /// Length in bytes of the canonical form ([`write_to`](Self::write_to)).
    ///
    /// ```
    /// # use ossa_events_core::Timestamp;
    ///
    /// let t = Timestamp::parse("2026-01-01T08:00:00.25+02:00")?;
    /// assert_eq!(t.encoded_len(), t.to_string().len());
    /// assert_eq!(t.encoded_len(), 28);
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    #[inline]
    pub fn encoded_len(&self) -> usize {
        let frac = match self.frac_digits {
            0 => 0,
            d => 1 + usize::from(d.min(9)),
        };
        let off = if self.offset == Offset::Utc { 1 } else { 6 };
        19 + frac + off
    }

    /// Whole seconds since 1970-01-01T00:00:00Z (negative before), with the
    /// offset applied. A leap second `23:59:60` counts as the following
    /// `00:00:00`, as in POSIX time.
    ///
    /// ```
    /// # use ossa_events_core::Timestamp;
    ///
    /// let a = Timestamp::parse("1970-01-01T01:00:00+01:00")?;
    /// assert_eq!(a.unix_seconds(), 0);
    /// assert_eq!(Timestamp::parse("1969-12-31T23:59:59Z")?.unix_seconds(), -1);
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    pub fn unix_seconds(&self) -> i64 {
        let days = days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.offset.minutes()) * 60
    }

    /// Nanoseconds within the second (0..1 000 000 000).
    ///
    /// ```
    /// # use ossa_events_core::Timestamp;
    ///
    /// assert_eq!(Timestamp::parse("2026-01-01T00:00:00.000250Z")?.nanos(), 250_000);
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    #[inline]
    pub fn nanos(&self) -> u32 {
        self.nanos
    }

    /// The year, 0-9999 (local, i.e. as written).
    ///
    /// ```
    /// # use ossa_events_core::Timestamp;
    ///
    /// assert_eq!(Timestamp::parse("2025-12-31T23:00:00-02:00")?.year(), 2025); // 2026 in UTC
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    #[inline]
    pub fn year(&self) -> u16 {
        self.year
    }

    /// The month, 1-12.
    ///
    /// ```
    /// # use ossa_events_core::Timestamp;
    ///
    /// assert_eq!(Timestamp::parse("2026-07-04T00:00:00Z")?.month(), 7);
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    #[inline]
    pub fn month(&self) -> u8 {
        self.month
    }

    /// The day of the month, 1-31.
    ///
    /// ```
    /// # use ossa_events_core::Timestamp;
    ///
    /// assert_eq!(Timestamp::parse("2026-07-04T00:00:00Z")?.day(), 4);
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    #[inline]
    pub fn day(&self) -> u8 {
        self.day
    }

    /// The hour, 0-23.
    ///
    /// ```
    /// # use ossa_events_core::Timestamp;
    ///
    /// assert_eq!(Timestamp::parse("2026-07-04T18:30:00+02:00")?.hour(), 18); // as written
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    #[inline]
    pub fn hour(&self) -> u8 {
        self.hour
    }

    /// The minute, 0-59.
    ///
    /// ```
    /// # use ossa_events_core::Timestamp;
    ///
    /// assert_eq!(Timestamp::parse("2026-07-04T18:30:00Z")?.minute(), 30);
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    #[inline]
    pub fn minute(&self) -> u8 {
        self.minute
    }

    /// The second, 0-60 (60 only for a leap second).
    ///
    /// ```
    /// # use ossa_events_core::Timestamp;
    ///
    /// assert_eq!(Timestamp::parse("2016-12-31T23:59:60Z")?.second(), 60); // a leap second
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    #[inline]
    pub fn second(&self) -> u8 {
        self.second
    }

    /// The UTC offset as written.
    ///
    /// ```
    /// # use ossa_events_core::{Offset, Timestamp};
    /// assert_eq!(Timestamp::parse("2026-07-04T18:30:00-04:00")?.offset(), Offset::Minutes(-240));
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    #[inline]
    pub fn offset(&self) -> Offset {
        self.offset
    }

    /// Number of fraction-of-second digits in the canonical form (0-9).
    ///
    /// ```
    /// # use ossa_events_core::Timestamp;
    ///
    /// let t = Timestamp::parse("2026-07-04T18:30:00.100Z")?;
    /// assert_eq!(t.frac_digits(), 3); // trailing zeros are kept
    /// assert_eq!(t.to_string(), "2026-07-04T18:30:00.100Z");
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    #[inline]
    pub fn frac_digits(&self) -> u8 {
        self.frac_digits
    }

    /// Whether both denote the same instant (compares the UTC time, ignoring
    /// offsets and how many fraction digits are written).
    ///
    /// ```
    /// # use ossa_events_core::Timestamp;
    ///
    /// let a = Timestamp::parse("2026-01-01T12:00:00Z")?;
    /// let b = Timestamp::parse("2026-01-01T13:00:00.000+01:00")?;
    /// assert!(a.same_instant(&b));
    /// assert_ne!(a, b); // `==` compares the written form
    /// # Ok::<(), ossa_events_core::TimeError>(())
    /// ```
    pub fn same_instant(&self, other: &Self) -> bool {
        self.unix_seconds() == other.unix_seconds() && self.nanos == other.nanos
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; Timestamp::MAX_LEN];
        f.write_str(self.write_to(&mut buf))
    }
}

impl FromStr for Timestamp {
    type Err = TimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

/// A source of the current time, implemented by the caller (`no_std` has no
/// clock).
///
/// ```
/// use ossa_events_core::{Clock, Timestamp};
/// /// A clock from a millisecond counter set once from NTP or an RTC.
/// struct Millis { boot_unix_ms: i64, uptime_ms: i64 }
/// impl Clock for Millis {
///     fn now(&self) -> Timestamp {
///         Timestamp::from_unix_millis(self.boot_unix_ms + self.uptime_ms).unwrap_or(Timestamp::UNIX_EPOCH)
///     }
/// }
/// let clock = Millis { boot_unix_ms: 1_700_000_000_000, uptime_ms: 1_500 };
/// assert_eq!(clock.now().to_string(), "2023-11-14T22:13:21.500Z");
/// ```
pub trait Clock {
    /// The current time.
    ///
    /// ```
    /// use ossa_events_core::{Clock, Event, FixedClock, Timestamp};
    /// let clock = FixedClock(Timestamp::UNIX_EPOCH);
    /// assert_eq!(clock.now(), Timestamp::UNIX_EPOCH);
    /// let ev = Event::builder().id("1").source("/s").ty("t").time_from(&clock).build()?;
    /// assert_eq!(ev.time(), Some(clock.now()));
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    fn now(&self) -> Timestamp;
}

impl<C: Clock + ?Sized> Clock for &C {
    #[inline]
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

/// A clock that always returns the same instant (tests, replay).
///
/// ```
/// use ossa_events_core::{Clock, FixedClock, Timestamp};
/// let clock = FixedClock(Timestamp::parse("2026-01-01T00:00:00Z")?);
/// assert_eq!(clock.now(), clock.now()); // always the same instant
/// # Ok::<(), ossa_events_core::TimeError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    #[inline]
    fn now(&self) -> Timestamp {
        self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The date and time digits, every value of each field with the
    /// others at their smallest and largest: the lanes of the 64-bit
    /// encoder do not disturb each other, and each agrees with `format!`,
    /// as does the 32-bit targets' loop.
    #[test]
    fn date_time_digits_for_every_field_value() {
        // year, month, day, hour, minute, second: smallest, largest.
        const RANGES: [(u16, u16); 6] = [(0, 9999), (1, 12), (1, 31), (0, 23), (0, 59), (0, 60)];
        for largest in [false, true] {
            let base = RANGES.map(|(lo, hi)| if largest { hi } else { lo });
            for (field, &(lo, hi)) in RANGES.iter().enumerate() {
                for v in lo..=hi {
                    let mut f = base;
                    f[field] = v;
                    let [y, mo, d, h, mi, s] = f;
                    let t = Timestamp {
                        year: y,
                        month: mo as u8,
                        day: d as u8,
                        hour: h as u8,
                        minute: mi as u8,
                        second: s as u8,
                        ..Timestamp::UNIX_EPOCH
                    };
                    let mut buf = [0u8; Timestamp::MAX_LEN];
                    let n = t.encode(&mut buf);
                    let want = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
                    assert_eq!(core::str::from_utf8(&buf[..n]).unwrap(), want);
                    // The 32-bit targets' form writes the same.
                    let mut compact = [0u8; Timestamp::MAX_LEN];
                    t.encode_date_time_compact(&mut compact);
                    assert_eq!(compact[..19], buf[..19]);
                }
            }
        }
    }

    /// The branch-free form and the byte-by-byte one agree on every single
    /// byte changed anywhere in a date-time, and the fast one declines only
    /// what the slow one then reports (or the lower-case `t` it leaves to it).
    #[test]
    fn date_time_fast_agrees_with_date_time_on_every_one_byte_change() {
        for base in [
            &b"2026-01-27T10:00:00Z"[..],
            b"1999-12-31T23:59:60.5+01:00",
            b"0000-00-00T00:00:00",
            b"9999-99-99T99:99:99",
        ] {
            for at in 0..base.len() {
                for byte in 0..=255u8 {
                    let mut b = base.to_vec();
                    b[at] = byte;
                    let slow = date_time(&b);
                    match date_time_fast(&b) {
                        Some(fast) => assert_eq!(Ok(fast), slow, "{b:?}"),
                        None => assert!(slow.is_err() || b[10] == b't', "{b:?}"),
                    }
                }
            }
            // Cut short: both decline.
            for n in 0..19 {
                assert_eq!(date_time_fast(&base[..n]), None);
                assert!(date_time(&base[..n]).is_err());
            }
        }
    }

    /// Every day of years 0000-9999 maps to its date and back, and every
    /// second of a day boundary to that day (the 32-bit arithmetic of
    /// `civil_from_days` and `from_unix`).
    #[test]
    fn every_day_of_the_range_round_trips() {
        let first = MIN_UNIX.div_euclid(86_400);
        let last = MAX_UNIX.div_euclid(86_400);
        for days in first..=last {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
            for secs in [days * 86_400, days * 86_400 + 86_399] {
                let t = Timestamp::from_unix(secs, 0).unwrap();
                assert_eq!((i64::from(t.year), t.month, t.day), (y, m, d), "{secs}");
                assert_eq!(t.unix_seconds(), secs);
            }
        }
    }

    fn p(s: &str) -> Result<Timestamp, TimeError> {
        Timestamp::parse(s)
    }

    fn canon(t: &Timestamp) -> String {
        let mut buf = [0u8; Timestamp::MAX_LEN];
        let s = t.write_to(&mut buf).to_owned();
        assert_eq!(s.len(), t.encoded_len());
        assert_eq!(s, t.to_string());
        s
    }

    #[test]
    fn constants() {
        assert_eq!(days_from_civil(0, 1, 1) * 86_400, MIN_UNIX);
        assert_eq!(days_from_civil(10_000, 1, 1) * 86_400 - 1, MAX_UNIX);
        assert_eq!(canon(&Timestamp::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp::UNIX_EPOCH.unix_seconds(), 0);
    }

    #[test]
    fn leap_seconds() {
        assert!(p("1990-12-31T23:59:60Z").is_ok());
        assert!(p("1990-12-31T15:59:60-08:00").is_ok());
        assert!(p("1991-01-01T05:29:60+05:30").is_ok());
        assert!(p("1990-12-31T23:59:60-00:00").is_ok());
        assert_eq!(p("1990-12-31T23:58:60Z"), Err(TimeError::LeapSecond));
        assert_eq!(p("1990-12-31T23:59:60+01:00"), Err(TimeError::LeapSecond));
        assert_eq!(p("1990-12-31T23:59:61Z"), Err(TimeError::Second));
        let t = p("1990-12-31T23:59:60Z").unwrap();
        assert_eq!(t.second(), 60);
        assert_eq!(canon(&t), "1990-12-31T23:59:60Z");
        assert_eq!(
            t.unix_seconds(),
            p("1991-01-01T00:00:00Z").unwrap().unix_seconds()
        );
    }

    #[test]
    fn case_and_separator() {
        let t = p("2018-04-05t17:31:00z").unwrap();
        assert_eq!(canon(&t), "2018-04-05T17:31:00Z");
        assert_eq!(p("2018-04-05 17:31:00Z"), Err(TimeError::Syntax { at: 10 }));
        assert_eq!(p("2018-04-05T17:31:00"), Err(TimeError::Syntax { at: 19 }));
        assert_eq!(
            p("2018-04-05T17:31:00Zx"),
            Err(TimeError::Syntax { at: 20 })
        );
        assert_eq!(
            p("2018-04-05T17:31:00+0100"),
            Err(TimeError::Syntax { at: 22 })
        );
        assert_eq!(
            p("2018-04-05T17:31:00.Z"),
            Err(TimeError::Syntax { at: 20 })
        );
        assert_eq!(p("2018-4-05T17:31:00Z"), Err(TimeError::Syntax { at: 6 }));
        assert_eq!(p("+2018-04-05T17:31:00Z"), Err(TimeError::Syntax { at: 0 }));
    }

    #[test]
    fn offsets() {
        let t = p("1996-12-19T16:39:57-08:00").unwrap();
        assert_eq!(t.offset(), Offset::Minutes(-480));
        assert_eq!(canon(&t), "1996-12-19T16:39:57-08:00");
        assert!(t.same_instant(&p("1996-12-20T00:39:57Z").unwrap()));
        let t = p("1996-12-19T16:39:57+05:45").unwrap();
        assert_eq!(t.offset(), Offset::Minutes(345));
        let t = p("1996-12-19T16:39:57+00:00").unwrap();
        assert_eq!(t.offset(), Offset::Minutes(0));
        assert_eq!(canon(&t), "1996-12-19T16:39:57+00:00");
        let t = p("1996-12-19T16:39:57-00:00").unwrap();
        assert_eq!(t.offset(), Offset::Unknown);
        assert_eq!(canon(&t), "1996-12-19T16:39:57-00:00");
        assert!(p("2000-01-01T00:00:00+23:59").is_ok());
        assert!(p("2000-01-01T00:00:00-23:59").is_ok());
        assert_eq!(p("2000-01-01T00:00:00+24:00"), Err(TimeError::OffsetHour));
        assert_eq!(p("2000-01-01T00:00:00+01:60"), Err(TimeError::OffsetMinute));
    }

    #[test]
    fn fractions() {
        let t = p("1985-04-12T23:20:50.5Z").unwrap();
        assert_eq!((t.nanos(), t.frac_digits()), (500_000_000, 1));
        assert_eq!(canon(&t), "1985-04-12T23:20:50.5Z");
        let t = p("1985-04-12T23:20:50.120Z").unwrap();
        assert_eq!((t.nanos(), t.frac_digits()), (120_000_000, 3));
        assert_eq!(canon(&t), "1985-04-12T23:20:50.120Z");
        let t = p("1985-04-12T23:20:50.123456789+01:00").unwrap();
        assert_eq!((t.nanos(), t.frac_digits()), (123_456_789, 9));
        assert_eq!(canon(&t), "1985-04-12T23:20:50.123456789+01:00");
        assert_eq!(canon(&t).len(), Timestamp::MAX_LEN);
        let t = p("1985-04-12T23:20:50.123456789987Z").unwrap();
        assert_eq!((t.nanos(), t.frac_digits()), (123_456_789, 9));
        assert_eq!(canon(&t), "1985-04-12T23:20:50.123456789Z");
        let t = p("1985-04-12T23:20:50.000000001Z").unwrap();
        assert_eq!(t.nanos(), 1);
        let u = t.with_frac_digits(3);
        assert_eq!(
            (u.nanos(), canon(&u)),
            (0, "1985-04-12T23:20:50.000Z".into())
        );
        let u = p("1985-04-12T23:20:50.987654321Z")
            .unwrap()
            .with_frac_digits(200);
        assert_eq!(u.frac_digits(), 9);
        let u = u.with_frac_digits(2);
        assert_eq!(
            (u.nanos(), canon(&u)),
            (980_000_000, "1985-04-12T23:20:50.98Z".into())
        );
        assert_eq!(canon(&u.with_frac_digits(0)), "1985-04-12T23:20:50Z");
    }

    #[test]
    fn calendar() {
        assert!(p("2000-02-29T00:00:00Z").is_ok());
        assert!(p("2024-02-29T00:00:00Z").is_ok());
        assert!(p("0000-02-29T00:00:00Z").is_ok());
        assert_eq!(p("1900-02-29T00:00:00Z"), Err(TimeError::Day));
        assert_eq!(p("2023-02-29T00:00:00Z"), Err(TimeError::Day));
        assert_eq!(p("2023-04-31T00:00:00Z"), Err(TimeError::Day));
        assert_eq!(p("2023-01-00T00:00:00Z"), Err(TimeError::Day));
        assert_eq!(p("2023-00-01T00:00:00Z"), Err(TimeError::Month));
        assert_eq!(p("2023-13-01T00:00:00Z"), Err(TimeError::Month));
        assert_eq!(p("2023-01-01T24:00:00Z"), Err(TimeError::Hour));
        assert_eq!(p("2023-01-01T23:60:00Z"), Err(TimeError::Minute));
        assert!(p("0000-01-01T00:00:00Z").is_ok());
        assert!(p("9999-12-31T23:59:59.999999999Z").is_ok());
    }

    #[test]
    fn round_trip() {
        for s in [
            "2018-04-05T17:31:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999+23:59",
            "1985-04-12T23:20:50.52Z",
            "1937-01-01T12:00:27.87+00:20",
            "1990-12-31T15:59:60-08:00",
            "2001-02-03T04:05:06.070-00:00",
        ] {
            let t: Timestamp = s.parse().unwrap();
            assert_eq!(canon(&t), s);
            assert_eq!(p(&canon(&t)), Ok(t));
        }
    }

    #[test]
    fn unix() {
        let t = Timestamp::from_unix(0, 0).unwrap();
        assert_eq!(canon(&t), "1970-01-01T00:00:00Z");
        let t = Timestamp::from_unix(1_522_949_460, 0).unwrap();
        assert_eq!(canon(&t), "2018-04-05T17:31:00Z");
        let t = Timestamp::from_unix(-1, 0).unwrap();
        assert_eq!(canon(&t), "1969-12-31T23:59:59Z");
        let t = Timestamp::from_unix(-86_400 * 365 - 1, 5).unwrap();
        assert_eq!(canon(&t), "1968-12-31T23:59:59.000000005Z");
        let t = Timestamp::from_unix(951_782_400, 0).unwrap();
        assert_eq!(canon(&t), "2000-02-29T00:00:00Z");
        assert_eq!(
            canon(&Timestamp::from_unix(MIN_UNIX, 0).unwrap()),
            "0000-01-01T00:00:00Z"
        );
        assert_eq!(
            canon(&Timestamp::from_unix(MAX_UNIX, 999_999_999).unwrap()),
            "9999-12-31T23:59:59.999999999Z"
        );
        assert_eq!(Timestamp::from_unix(MIN_UNIX - 1, 0), None);
        assert_eq!(Timestamp::from_unix(MAX_UNIX + 1, 0), None);
        assert_eq!(Timestamp::from_unix(i64::MIN, 0), None);
        assert_eq!(Timestamp::from_unix(i64::MAX, 0), None);
        assert_eq!(Timestamp::from_unix(0, 1_000_000_000), None);

        let t = Timestamp::from_unix_millis(1_522_949_460_120).unwrap();
        assert_eq!(canon(&t), "2018-04-05T17:31:00.120Z");
        let t = Timestamp::from_unix_millis(-1).unwrap();
        assert_eq!(canon(&t), "1969-12-31T23:59:59.999Z");
        let t = Timestamp::from_unix_millis(1000).unwrap();
        assert_eq!(canon(&t), "1970-01-01T00:00:01Z");
        assert_eq!(Timestamp::from_unix_millis(i64::MIN), None);
        assert_eq!(Timestamp::from_unix_millis(i64::MAX), None);

        assert_eq!(
            p("2018-04-05T17:31:00Z").unwrap().unix_seconds(),
            1_522_949_460
        );
        assert_eq!(
            p("2018-04-05T19:31:00+02:00").unwrap().unix_seconds(),
            1_522_949_460
        );
        assert_eq!(
            p("2018-04-05T12:01:00-05:30").unwrap().unix_seconds(),
            1_522_949_460
        );
        assert_eq!(p("1969-12-31T23:59:59Z").unwrap().unix_seconds(), -1);
        assert_eq!(
            p("0000-01-01T00:00:00+01:00").unwrap().unix_seconds(),
            MIN_UNIX - 3600
        );

        // Inverse over a spread of values.
        let mut s = MIN_UNIX;
        while s <= MAX_UNIX {
            let t = Timestamp::from_unix(s, 7).unwrap();
            assert_eq!(t.unix_seconds(), s);
            assert_eq!(p(&canon(&t)), Ok(t));
            s += 86_400 * 13 + 3_607;
        }
    }

    #[test]
    fn new_validates() {
        let t = Timestamp::new(2018, 4, 5, 17, 31, 0, 120_000_000, Offset::Utc).unwrap();
        assert_eq!(canon(&t), "2018-04-05T17:31:00.12Z");
        assert_eq!(
            Timestamp::new(10_000, 1, 1, 0, 0, 0, 0, Offset::Utc),
            Err(TimeError::Year)
        );
        assert_eq!(
            Timestamp::new(2000, 1, 1, 0, 0, 0, 1_000_000_000, Offset::Utc),
            Err(TimeError::Nanosecond)
        );
        assert_eq!(
            Timestamp::new(2000, 1, 1, 0, 0, 0, 0, Offset::Minutes(24 * 60)),
            Err(TimeError::OffsetHour)
        );
        assert_eq!(
            Timestamp::new(2000, 1, 1, 0, 0, 0, 0, Offset::Minutes(i16::MIN)),
            Err(TimeError::OffsetHour)
        );
        let t = Timestamp::new(2000, 1, 1, 0, 0, 0, 0, Offset::Minutes(-(23 * 60 + 59)));
        assert_eq!(canon(&t.unwrap()), "2000-01-01T00:00:00-23:59");
    }

    #[test]
    fn clock() {
        let t = Timestamp::from_unix(1_522_949_460, 0).unwrap();
        let c = FixedClock(t);
        fn via<C: Clock>(c: C) -> Timestamp {
            c.now()
        }
        let r: &FixedClock = &c;
        assert_eq!(via(r), t);
        let d: &dyn Clock = &c;
        assert_eq!(via(d), t);
    }

    #[test]
    fn garbage_never_panics() {
        assert_eq!(p(""), Err(TimeError::Syntax { at: 0 }));
        let full = "1985-04-12T23:20:50.123456789012-08:00";
        for i in 0..full.len() {
            let r = Timestamp::parse_bytes(&full.as_bytes()[..i]);
            assert!(r.is_err(), "prefix {i} accepted");
        }
        assert!(p(full).is_ok());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut buf = [0u8; 48];
        let alphabet = b"0123456789-:.TtZz+ \xff";
        for round in 0..20_000 {
            let len = round % buf.len();
            for b in buf.iter_mut().take(len) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = if round % 2 == 0 {
                    x as u8
                } else {
                    alphabet[(x % alphabet.len() as u64) as usize]
                };
            }
            if let Ok(t) = Timestamp::parse_bytes(&buf[..len]) {
                assert_eq!(p(&canon(&t)), Ok(t));
            }
        }
        // Mutations of a valid string.
        let base = *b"2024-02-29T23:59:60.5+00:00";
        for i in 0..base.len() {
            for c in 0..=255u8 {
                let mut m = base;
                m[i] = c;
                let _ = Timestamp::parse_bytes(&m);
            }
        }
        assert_eq!(
            TimeError::Syntax { at: 3 }.to_string(),
            "invalid rfc 3339 timestamp syntax at byte 3"
        );
    }
}
