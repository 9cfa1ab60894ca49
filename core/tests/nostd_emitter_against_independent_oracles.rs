//! What a firmware user drives, against independent oracles: OSSA payload
//! strings (serde_json reads them back), ids from any 16 random bytes (uuid
//! reads a v4), RFC 3339 times (a year-by-year civil-date model), `poll`
//! timing at extreme intervals and clock jumps, and the batch's framing
//! after short writes, write errors and failed flushes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events_core::format::json;
use ossa_events_core::{Event, EventId, Timestamp, ossa};
use proptest::prelude::*;

fn encode(ev: &Event<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 16];
    let n = json::to_slice(ev, &mut buf).unwrap();
    assert_eq!(
        json::encoded_len(ev).unwrap(),
        n,
        "encoded_len agrees with the bytes"
    );
    buf.truncate(n);
    buf
}

const SPECIAL: &str = "[\\x00-\\x1f\"\\\\\\x7f\u{80}\u{9f}\u{2028}\u{2029}\u{fffe}a-zé😀]{0,40}";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ossa_payload_strings_round_trip_through_serde_json(
        a in prop_oneof![any::<String>(), SPECIAL], b in prop_oneof![any::<String>(), SPECIAL],
        c in prop_oneof![any::<String>(), SPECIAL], d in prop_oneof![any::<String>(), SPECIAL],
        r in any::<Option<bool>>(), n in any::<u64>(),
    ) {
        // `tool` is also the `subject` (a CloudEvents String: no control
        // characters), so the arbitrary text goes to the data-only members.
        let err = ossa::ErrorInfo { message: &b, code: Some(&c), retryable: r };
        let f = ossa::ToolFailed { tool: "t", call_id: Some(&d), error: err, duration_ms: Some(n) };
        let ev = Event::builder().id("1").source("/s").ossa(&f).build().unwrap();
        let bytes = encode(&ev);
        prop_assert!(!bytes.contains(&b'\n'), "one line");
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let data = &v["data"];
        prop_assert_eq!(data["call_id"].as_str(), Some(d.as_str()));
        prop_assert_eq!(data["error"]["message"].as_str(), Some(b.as_str()));
        prop_assert_eq!(data["error"]["code"].as_str(), Some(c.as_str()));
        prop_assert_eq!(data["error"]["retryable"].as_bool(), r);
        prop_assert_eq!(data["duration_ms"].as_u64(), Some(n));
        let w = ossa::WorkflowStarted { workflow_id: "w", name: Some(&a), input: None };
        let ev = Event::builder().id("1").source("/s").ossa(&w).build().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&encode(&ev)).unwrap();
        prop_assert_eq!(v["data"]["name"].as_str(), Some(a.as_str()));
    }

    #[test]
    fn ids_are_v4_for_any_bytes(bytes in any::<[u8; 16]>()) {
        let id = EventId::from_random_bytes(bytes);
        let u = uuid::Uuid::parse_str(id.as_str()).unwrap();
        prop_assert_eq!(u.get_version_num(), 4);
        prop_assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        prop_assert_eq!(id.as_str(), u.hyphenated().to_string());
    }

    #[test]
    fn unix_millis_round_trip(ms in -62_167_219_200_000i64..=253_402_300_799_999) {
        let t = Timestamp::from_unix_millis(ms).unwrap();
        let s = t.to_string();
        let back = Timestamp::parse(&s).unwrap();
        prop_assert_eq!(back, t);
        prop_assert_eq!(back.unix_seconds() * 1000 + i64::from(back.nanos() / 1_000_000), ms);
    }
}

fn leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Days from 1970-01-01, counted year by year (an oracle independent of the
/// crate's Hinnant arithmetic).
fn naive_days(y: i64, m: u32, d: u32) -> i64 {
    let mut days = 0i64;
    if y >= 1970 {
        for yy in 1970..y {
            days += if leap(yy) { 366 } else { 365 };
        }
    } else {
        for yy in y..1970 {
            days -= if leap(yy) { 366 } else { 365 };
        }
    }
    let ml = [
        31,
        if leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days + ml.iter().take(m as usize - 1).sum::<i64>() + i64::from(d) - 1
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn rfc3339_parse_agrees_with_a_naive_calendar(
        y in 0i64..=9999, m in 1u32..=12, d in 1u32..=31, h in 0u32..24, mi in 0u32..60, s in 0u32..60,
        frac in proptest::option::of("[0-9]{1,12}"),
        off in proptest::option::of((any::<bool>(), 0u32..24, 0u32..60)),
    ) {
        let ml = [31, if leap(y) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let d = d.min(ml[m as usize - 1]);
        let off_text = match off {
            None => "Z".to_string(),
            Some((neg, oh, om)) => format!("{}{oh:02}:{om:02}", if neg { '-' } else { '+' }),
        };
        let frac_text = frac.as_ref().map(|f| format!(".{f}")).unwrap_or_default();
        let text = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac_text}{off_text}");
        let t = Timestamp::parse(&text).unwrap();
        let off_min = match off { None => 0, Some((neg, oh, om)) => (if neg { -1 } else { 1 }) * i64::from(oh * 60 + om) };
        let want = naive_days(y, m, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s) - off_min * 60;
        prop_assert_eq!(t.unix_seconds(), want, "{}", text);
        let digits: String = frac.clone().unwrap_or_default().chars().take(9).collect();
        let nanos: u32 = if digits.is_empty() { 0 } else { format!("{digits:0<9}").parse().unwrap() };
        prop_assert_eq!(t.nanos(), nanos);
        // Canonical text (fraction of at most 9 digits) writes back as read.
        if frac.as_ref().is_none_or(|f| f.len() <= 9) {
            prop_assert_eq!(t.to_string(), text.clone());
        }
        // from_unix of the UTC instant round-trips to the same instant.
        if let Some(u) = Timestamp::from_unix(want, nanos) {
            prop_assert!(u.same_instant(&t));
            prop_assert_eq!(Timestamp::parse(&u.to_string()).unwrap(), u);
        }
    }
}

mod emitted_times {
    use ossa_events_core::emitter::{Config, Emitter};
    use ossa_events_core::io::SliceWriter;
    use ossa_events_core::{Event, FixedClock, Offset, RandomIds, Scratch, Timestamp, parse};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn the_emitted_time_parses_back_as_the_clock_gave_it(
            y in 0u16..=9999, m in 1u8..=12, d in 1u8..=28, h in 0u8..24, mi in 0u8..60, s in 0u8..60,
            nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
            digits in 0u8..=9,
            off in prop_oneof![Just(Offset::Utc), Just(Offset::Unknown), (-1439i16..=1439).prop_map(Offset::Minutes)],
            leap in any::<bool>(),
        ) {
            let t = if leap {
                Timestamp::new(y, 12, 31, 23, 59, 60, nanos, Offset::Utc)
            } else {
                Timestamp::new(y, m, d, h, mi, s, nanos, off)
            }.unwrap().with_frac_digits(digits);
            let mut out = vec![0u8; 4096];
            let ids = RandomIds(|b: &mut [u8; 16]| b.fill(0));
            let mut em: Emitter<'_, _, _, _, 2, 1024> =
                Emitter::new(Config::new("/s"), SliceWriter::new(&mut out), ids, FixedClock(t));
            em.emit(Event::builder().ty("t")).unwrap();
            prop_assert_eq!(em.flush().unwrap(), 1);
            let line = em.writer().written().strip_suffix(b"\n").unwrap().to_vec();
            let mut buf = [0u8; 512];
            let ev = parse::json::parse_event(&line, &mut Scratch::new(&mut buf)).unwrap();
            prop_assert_eq!(ev.time(), Some(t));
            let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
            let text = t.to_string();
            prop_assert_eq!(v["time"].as_str(), Some(text.as_str()));
            prop_assert_eq!(v["id"].as_str(), Some("00000000-0000-4000-8000-000000000000"));
        }
    }
}

mod poll_timing {
    use std::cell::Cell;

    use ossa_events_core::emitter::{Config, Emitter};
    use ossa_events_core::io::SliceWriter;
    use ossa_events_core::{Clock, Event, RandomIds, Timestamp};
    use proptest::prelude::*;

    struct C<'a>(&'a Cell<i64>);
    impl Clock for C<'_> {
        fn now(&self) -> Timestamp {
            Timestamp::from_unix_millis(self.0.get()).unwrap()
        }
    }

    const MIN: i64 = -62_167_219_200_000;
    const MAX: i64 = 253_402_300_799_999;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn poll_and_next_flush_in_ms_agree_on_a_monotonic_clock(
            interval in prop_oneof![Just(0u64), Just(1), 0u64..5000, Just(i64::MAX as u64), Just(u64::MAX)],
            start in MIN..MAX,
            steps in proptest::collection::vec((any::<bool>(), prop_oneof![0i64..3000, 0i64..i64::MAX / 4]), 1..40),
        ) {
            let now = Cell::new(start);
            let mut out = vec![0u8; 1 << 16];
            let ids = RandomIds(|b: &mut [u8; 16]| b.fill(1));
            let config = Config::new("/s").batch_size(1000).flush_interval_ms(interval);
            let mut em: Emitter<'_, _, _, _, 64, 16384> =
                Emitter::new(config, SliceWriter::new(&mut out), ids, C(&now));
            let mut oldest: Option<i64> = None;
            for (emit, dt) in steps {
                let t = now.get().saturating_add(dt).min(MAX);
                now.set(t);
                if emit && em.pending() < 60 {
                    em.emit(Event::builder().ty("t")).unwrap();
                    oldest.get_or_insert(t);
                } else {
                    let at = Timestamp::from_unix_millis(t).unwrap();
                    let next = em.next_flush_in_ms(at);
                    let waited = oldest.map(|o| (t - o) as u64);
                    prop_assert_eq!(next, waited.map(|w| interval.saturating_sub(w)));
                    let n = em.poll(at).unwrap();
                    prop_assert_eq!(n > 0, next == Some(0), "poll flushes exactly when next_flush_in_ms says 0");
                    if n > 0 { oldest = None; }
                }
            }
        }
    }
}

mod framed_len {
    use ossa_events_core::Event;
    use ossa_events_core::batch::{Batch, BatchFormat};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Act {
        Short(usize),
        Fail,
        Zero,
    }

    struct W {
        acts: Vec<Act>,
        flush_fail: Vec<bool>,
        out: Vec<u8>,
    }
    impl embedded_io::ErrorType for W {
        type Error = embedded_io::ErrorKind;
    }
    impl embedded_io::Write for W {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            match self.acts.pop() {
                None => {
                    self.out.extend_from_slice(buf);
                    Ok(buf.len())
                }
                Some(Act::Short(n)) => {
                    let n = n.min(buf.len());
                    self.out.extend_from_slice(&buf[..n]);
                    Ok(n)
                }
                Some(Act::Fail) => Err(embedded_io::ErrorKind::Interrupted),
                Some(Act::Zero) => Ok(0),
            }
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            if self.flush_fail.pop() == Some(true) {
                Err(embedded_io::ErrorKind::Other)
            } else {
                Ok(())
            }
        }
    }

    fn act() -> impl Strategy<Value = Act> {
        prop_oneof![
            3 => (1usize..200).prop_map(Act::Short),
            1 => Just(Act::Fail),
            1 => Just(Act::Zero),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn framed_len_is_what_the_next_drain_writes(
            lines in any::<bool>(),
            steps in proptest::collection::vec((0usize..3, proptest::collection::vec(act(), 0..6), proptest::collection::vec(any::<bool>(), 0..2)), 1..12),
        ) {
            let format = if lines { BatchFormat::JsonLines } else { BatchFormat::JsonBatch };
            let mut batch: Batch<6, 2048> = Batch::new(format);
            let mut next = 0;
            for (pushes, acts, flush_fail) in steps {
                for _ in 0..pushes {
                    next += 1;
                    let id = format!("e{next}");
                    let ev = Event::builder().id(&id).source("/s").ty("t").build().unwrap();
                    let _ = batch.push_ref(&ev);
                }
                let mut w = W { acts: acts.into_iter().rev().collect(), flush_fail, out: Vec::new() };
                let before = batch.framed_len();
                let scripted = w.acts.len() + w.flush_fail.len();
                let r = batch.write_to(&mut w);
                if scripted == 0 {
                    prop_assert!(r.is_ok());
                }
                if r.is_ok() {
                    prop_assert_eq!(w.out.len(), before, "framed_len promised {} bytes", before);
                }
            }
        }
    }
}

mod arena_limits {
    use ossa_events_core::Event;
    use ossa_events_core::batch::{Batch, BatchFormat, PushErrorKind};
    use ossa_events_core::format::json;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn an_event_fits_exactly_when_its_bytes_and_terminator_do(
            first in 0usize..300, second in 0usize..300, lines in any::<bool>(),
        ) {
            let format = if lines { BatchFormat::JsonLines } else { BatchFormat::JsonBatch };
            let (sa, sb) = (format!("x{}", "a".repeat(first)), format!("x{}", "é".repeat(second)));
            let a = Event::builder().id("1").source("/s").ty("t").subject(&sa).build().unwrap();
            let b = Event::builder().id("2").source("/s").ty("t").subject(&sb).build().unwrap();
            let (la, lb) = (json::encoded_len(&a).unwrap() + 1, json::encoded_len(&b).unwrap() + 1);
            let mut batch: Batch<4, 512> = Batch::new(format);
            let ra = batch.push_ref(&a);
            prop_assert_eq!(ra.is_ok(), la <= 512);
            if ra.is_err() {
                prop_assert_eq!(ra, Err(PushErrorKind::TooLarge));
                return Ok(());
            }
            let rb = batch.push_ref(&b);
            let want = if la + lb <= 512 { Ok(()) } else if lb > 512 { Err(PushErrorKind::TooLarge) } else { Err(PushErrorKind::FullBytes) };
            prop_assert_eq!(rb, want);
            prop_assert_eq!(batch.bytes_len(), la + if batch.len() == 2 { lb } else { 0 });
        }
    }
}
