//! The no_std emitter and batch against a writer that fails on command.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use ossa_events_core::batch::{Batch, BatchFormat, DrainError, PushErrorKind};
use ossa_events_core::emitter::{Config, EmitError, Emitter};
use ossa_events_core::parse::json::{BatchParser, parse_event};
use ossa_events_core::{Clock, Event, ExtValue, RandomIds, Rule, Scratch, Timestamp, ossa};

/// What the fake writer does next.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Ok,
    /// `write` fails.
    FailWrite,
    /// `flush` fails (bytes were written but not confirmed).
    FailFlush,
    /// `write` returns Ok(0).
    Zero,
    /// `write` takes at most one byte per call.
    Trickle,
}

#[derive(Default)]
struct Wire {
    /// Bytes confirmed by a successful flush.
    delivered: Vec<u8>,
    /// Bytes written since the last successful flush.
    pending: Vec<u8>,
    flushes: usize,
}

#[derive(Clone)]
struct FakeWriter {
    wire: Rc<RefCell<Wire>>,
    mode: Rc<Cell<Mode>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Down;
impl core::fmt::Display for Down {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("link down")
    }
}
impl std::error::Error for Down {}
impl embedded_io::Error for Down {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::BrokenPipe
    }
}
impl embedded_io::ErrorType for FakeWriter {
    type Error = Down;
}
impl embedded_io::Write for FakeWriter {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Down> {
        match self.mode.get() {
            Mode::FailWrite => Err(Down),
            Mode::Zero => Ok(0),
            Mode::Trickle => {
                self.wire
                    .borrow_mut()
                    .pending
                    .extend_from_slice(&buf[..buf.len().min(1)]);
                Ok(buf.len().min(1))
            }
            _ => {
                self.wire.borrow_mut().pending.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }
    fn flush(&mut self) -> Result<(), Down> {
        let mut w = self.wire.borrow_mut();
        if self.mode.get() == Mode::FailFlush {
            // What was written is lost with the connection.
            w.pending.clear();
            return Err(Down);
        }
        let p = std::mem::take(&mut w.pending);
        w.delivered.extend_from_slice(&p);
        w.flushes += 1;
        Ok(())
    }
}

fn fake() -> (FakeWriter, Rc<RefCell<Wire>>, Rc<Cell<Mode>>) {
    let wire = Rc::new(RefCell::new(Wire::default()));
    let mode = Rc::new(Cell::new(Mode::Ok));
    (
        FakeWriter {
            wire: wire.clone(),
            mode: mode.clone(),
        },
        wire,
        mode,
    )
}

/// A clock the test moves by hand.
struct TestClock(Cell<i64>);
impl TestClock {
    fn at(ms: i64) -> Self {
        TestClock(Cell::new(ms))
    }
    fn advance(&self, ms: i64) {
        self.0.set(self.0.get() + ms);
    }
    fn now_ts(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0.get()).unwrap()
    }
}
impl Clock for &TestClock {
    fn now(&self) -> Timestamp {
        self.now_ts()
    }
}

fn ids() -> RandomIds<impl FnMut(&mut [u8; 16])> {
    let mut n: u128 = 0;
    RandomIds(move |b: &mut [u8; 16]| {
        n += 1;
        *b = n.to_le_bytes();
    })
}

/// Parses delivered JSON Lines; returns the ids in order.
fn delivered_ids(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut buf = vec![0u8; line.len()];
        let ev = parse_event(line, &mut Scratch::new(&mut buf)).unwrap();
        out.push(ev.id().to_string());
    }
    out
}

fn tool_call(i: u64) -> ossa::TurnStarted<'static> {
    ossa::TurnStarted {
        turn: i,
        input: None,
    }
}

#[test]
fn flushes_when_the_batch_reaches_its_size() {
    let (w, wire, _) = fake();
    let clock = TestClock::at(1_700_000_000_000);
    let mut em: Emitter<'_, _, _, _, 8, 4096> =
        Emitter::new(Config::new("/dev/1").batch_size(3), w, ids(), &clock);
    for i in 0..2 {
        em.emit_ossa(&tool_call(i)).unwrap();
    }
    assert!(
        wire.borrow().delivered.is_empty(),
        "no flush before the batch is full"
    );
    em.emit_ossa(&tool_call(2)).unwrap();
    assert_eq!(delivered_ids(&wire.borrow().delivered).len(), 3);
    assert_eq!(wire.borrow().flushes, 1);
    em.emit_ossa(&tool_call(3)).unwrap();
    assert_eq!(em.pending(), 1);
    let c = em.counters();
    assert_eq!((c.emitted, c.delivered, c.failed_writes), (4, 3, 0));
}

#[test]
fn flushes_to_make_room_when_the_bytes_run_out() {
    let (w, wire, _) = fake();
    let clock = TestClock::at(0);
    // One event is 190-240 bytes: two fit in 480, the third forces a flush.
    let mut em: Emitter<'_, _, _, _, 16, 480> =
        Emitter::new(Config::new("/dev/1").batch_size(16), w, ids(), &clock);
    em.emit_ossa(&tool_call(0)).unwrap();
    em.emit_ossa(&tool_call(1)).unwrap();
    assert!(wire.borrow().delivered.is_empty());
    let one = em.batch().events().next().unwrap().len();
    assert!((190..=240).contains(&one), "event size {one}");
    assert!(em.batch().bytes_free() < one);
    em.emit_ossa(&tool_call(2)).unwrap();
    assert_eq!(delivered_ids(&wire.borrow().delivered).len(), 2);
    assert_eq!(em.pending(), 1);
}

#[test]
fn poll_flushes_after_the_interval_since_the_oldest_event() {
    let (w, wire, _) = fake();
    let clock = TestClock::at(10_000);
    let mut em: Emitter<'_, _, _, _, 8, 4096> = Emitter::new(
        Config::new("/dev/1").batch_size(8).flush_interval_ms(500),
        w,
        ids(),
        &clock,
    );
    assert_eq!(em.poll(clock.now_ts()).unwrap(), 0, "nothing pending");
    assert_eq!(em.next_flush_in_ms(clock.now_ts()), None);
    em.emit_ossa(&tool_call(0)).unwrap();
    clock.advance(300);
    em.emit_ossa(&tool_call(1)).unwrap();
    assert_eq!(em.next_flush_in_ms(clock.now_ts()), Some(200));
    clock.advance(199);
    assert_eq!(em.poll(clock.now_ts()).unwrap(), 0, "oldest is 499 ms old");
    clock.advance(1);
    assert_eq!(em.poll(clock.now_ts()).unwrap(), 2, "oldest is 500 ms old");
    assert_eq!(delivered_ids(&wire.borrow().delivered).len(), 2);
    assert_eq!(em.next_flush_in_ms(clock.now_ts()), None);
    // The interval restarts with the next event.
    em.emit_ossa(&tool_call(2)).unwrap();
    clock.advance(499);
    assert_eq!(em.poll(clock.now_ts()).unwrap(), 0);
}

/// A writer that is down: a `poll` whose write fails starts the wait over,
/// so the next try is one flush interval later and `next_flush_in_ms` says
/// so. Before, it said `Some(0)` for ever after a failure and every `poll`
/// wrote again: a superloop that sleeps what it says spun at full CPU on a
/// link that was down. `flush()` still tries at once.
#[test]
fn poll_tries_a_failed_writer_again_one_interval_later() {
    let (w, wire, mode) = fake();
    let clock = TestClock::at(0);
    let mut em: Emitter<'_, _, _, _, 8, 4096> = Emitter::new(
        Config::new("/dev/1").batch_size(8).flush_interval_ms(1000),
        w,
        ids(),
        &clock,
    );
    em.emit_ossa(&tool_call(0)).unwrap();
    mode.set(Mode::FailWrite);
    clock.advance(1000);
    assert!(em.poll(clock.now_ts()).is_err());
    assert_eq!(em.counters().failed_writes, 1);
    assert_eq!(em.next_flush_in_ms(clock.now_ts()), Some(1000));
    for _ in 0..5 {
        assert_eq!(em.poll(clock.now_ts()).unwrap(), 0, "not again at once");
    }
    clock.advance(999);
    assert_eq!(em.poll(clock.now_ts()).unwrap(), 0);
    assert_eq!(em.counters().failed_writes, 1, "one try an interval");
    clock.advance(1);
    assert!(em.poll(clock.now_ts()).is_err());
    assert_eq!(em.counters().failed_writes, 2);
    // An explicit flush does not wait.
    assert!(em.flush().is_err());
    assert_eq!(em.counters().failed_writes, 3);
    mode.set(Mode::Ok);
    clock.advance(1000);
    assert_eq!(em.poll(clock.now_ts()).unwrap(), 1);
    assert_eq!(delivered_ids(&wire.borrow().delivered).len(), 1);
    assert_eq!(em.next_flush_in_ms(clock.now_ts()), None);
}

#[test]
fn a_failing_writer_loses_nothing_and_recovers() {
    let (w, wire, mode) = fake();
    let clock = TestClock::at(0);
    let mut em: Emitter<'_, _, _, _, 32, 16384> =
        Emitter::new(Config::new("/dev/1").batch_size(4), w, ids(), &clock);
    let mut emitted = 0;
    for round in 0..6 {
        mode.set(match round % 3 {
            0 => Mode::Ok,
            1 => Mode::FailWrite,
            _ => Mode::FailFlush,
        });
        for _ in 0..3 {
            em.emit_ossa(&tool_call(emitted)).unwrap();
            emitted += 1;
        }
    }
    mode.set(Mode::Ok);
    em.flush().unwrap();
    let ids = delivered_ids(&wire.borrow().delivered);
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len() as u64, emitted, "every event delivered");
    assert_eq!(
        ids.len(),
        unique.len(),
        "lost flushes are not duplicated: their bytes never arrived"
    );
    let c = em.counters();
    assert_eq!(c.emitted, emitted);
    assert_eq!(c.delivered, emitted);
    assert!(c.failed_writes >= 2, "{c:?}");
    assert_eq!(em.pending(), 0);
}

#[test]
fn a_full_batch_with_the_writer_down_refuses_and_counts() {
    let (w, _wire, mode) = fake();
    let clock = TestClock::at(0);
    let mut em: Emitter<'_, _, _, _, 2, 4096> =
        Emitter::new(Config::new("/dev/1").batch_size(8), w, ids(), &clock);
    mode.set(Mode::FailWrite);
    em.emit_ossa(&tool_call(0)).unwrap();
    em.emit_ossa(&tool_call(1)).unwrap(); // reaches N = 2: flush fails, events kept
    let err = em.emit_ossa(&tool_call(2)).unwrap_err();
    assert!(matches!(err, EmitError::Full(DrainError::Io(_))), "{err:?}");
    let c = em.counters();
    assert_eq!((c.emitted, c.dropped, em.pending()), (2, 1, 2));
    mode.set(Mode::Ok);
    em.emit_ossa(&tool_call(3)).unwrap();
    assert_eq!(em.counters().delivered, 2);
}

#[test]
fn invalid_events_are_rejected_with_their_error_and_counted() {
    let (w, _wire, _) = fake();
    let clock = TestClock::at(0);
    let mut em: Emitter<'_, _, _, _, 8, 4096> =
        Emitter::new(Config::new("/dev/1"), w, ids(), &clock);
    let err = em
        .emit(Event::builder().ty("t").source("not a uri"))
        .unwrap_err();
    match err {
        EmitError::Invalid(v) => assert_eq!(v.rule, Rule::NotUriReference),
        e => panic!("{e:?}"),
    }
    let err = em
        .emit(
            Event::builder()
                .ty("t")
                .extension("Bad", ExtValue::Integer(1)),
        )
        .unwrap_err();
    assert!(
        matches!(err, EmitError::Invalid(ref v) if v.rule == Rule::InvalidName),
        "{err:?}"
    );
    let err = em.emit(Event::builder()).unwrap_err();
    assert!(
        matches!(err, EmitError::Invalid(ref v) if v.rule == Rule::Missing),
        "missing type: {err:?}"
    );
    assert_eq!(em.counters().rejected, 3);
    assert_eq!(em.pending(), 0);
}

#[test]
fn an_event_larger_than_the_arena_is_too_large_not_full() {
    let (w, _wire, _) = fake();
    let clock = TestClock::at(0);
    let mut em: Emitter<'_, _, _, _, 8, 128> =
        Emitter::new(Config::new("/dev/1"), w, ids(), &clock);
    let big = "x".repeat(200);
    let err = em.emit(Event::builder().ty("t").subject(&big)).unwrap_err();
    assert!(matches!(err, EmitError::TooLarge), "{err:?}");
    assert_eq!(em.counters().rejected, 1);
    assert_eq!(em.counters().dropped, 0);
}

#[test]
fn writers_that_accept_zero_or_one_byte_never_panic() {
    let (w, wire, mode) = fake();
    let clock = TestClock::at(0);
    let mut em: Emitter<'_, _, _, _, 8, 4096> =
        Emitter::new(Config::new("/dev/1").batch_size(8), w, ids(), &clock);
    em.emit_ossa(&tool_call(0)).unwrap();
    mode.set(Mode::Zero);
    assert_eq!(em.flush(), Err(DrainError::WriteZero));
    mode.set(Mode::Trickle);
    assert_eq!(em.flush(), Ok(1));
    assert_eq!(delivered_ids(&wire.borrow().delivered).len(), 1);
}

#[test]
fn context_and_defaults_fill_what_the_event_leaves_unset() {
    let (w, wire, _) = fake();
    let clock = TestClock::at(1_764_000_000_000);
    let mut em: Emitter<'_, _, _, _, 8, 4096> =
        Emitter::new(Config::new("/dev/1").batch_size(1), w, ids(), &clock);
    em.set_context(ossa::Context {
        agent_id: Some("a1"),
        trace_id: Some("t1"),
        ..Default::default()
    });
    em.emit(
        Event::builder()
            .ty("x")
            .id("own-id")
            .ossa_agent_id("override"),
    )
    .unwrap();
    let bytes = wire.borrow().delivered.clone();
    let line = bytes.split(|&b| b == b'\n').next().unwrap();
    let mut buf = vec![0u8; 256];
    let ev = parse_event(line, &mut Scratch::new(&mut buf)).unwrap();
    assert_eq!(ev.id(), "own-id");
    assert_eq!(ev.source(), "/dev/1");
    assert_eq!(ev.ossa_agent_id(), Some("override"));
    assert_eq!(ev.ossa_trace_id(), Some("t1"));
    assert_eq!(ev.time(), Some(clock.now_ts()));
}

#[test]
fn json_batch_framing_parses_back_as_a_batch() {
    let (w, wire, _) = fake();
    let clock = TestClock::at(0);
    let mut em: Emitter<'_, _, _, _, 8, 4096> = Emitter::new(
        Config::new("/dev/1")
            .batch_size(3)
            .format(BatchFormat::JsonBatch),
        w,
        ids(),
        &clock,
    );
    for i in 0..3 {
        em.emit_ossa(&tool_call(i)).unwrap();
    }
    let bytes = wire.borrow().delivered.clone();
    let mut p = BatchParser::new(&bytes).unwrap();
    let mut buf = vec![0u8; 1024];
    let mut n = 0;
    while let Some(ev) = p.next_event(&mut buf) {
        assert_eq!(ev.unwrap().ty(), ossa::TURN_STARTED);
        n += 1;
    }
    assert_eq!(n, 3);
}

#[test]
fn batch_push_hands_the_event_back_when_full() {
    let mut b: Batch<1, 4096> = Batch::new(BatchFormat::JsonLines);
    let ev = Event::builder()
        .id("1")
        .source("/s")
        .ty("t")
        .build()
        .unwrap();
    b.push(ev.clone()).unwrap();
    let err = b.push(ev.clone()).unwrap_err();
    assert_eq!(err.kind, PushErrorKind::FullCount);
    assert!(err.is_full());
    assert_eq!(err.event.id(), "1");
    let mut small: Batch<4, 80> = Batch::new(BatchFormat::JsonLines);
    small.push(ev.clone()).unwrap();
    let err = small.push(ev.clone()).unwrap_err();
    assert_eq!(err.kind, PushErrorKind::FullBytes);
    assert_eq!(small.len(), 1, "a refused push leaves the batch as it was");
    // JSON Lines keeps each event's newline in the arena.
    let first_len = small.bytes_len();
    assert_eq!(small.events().next().unwrap().len(), first_len - 1);
}

/// A writer that takes `budget` bytes, then fails once, then works.
struct TearOnce {
    budget: usize,
    failed: bool,
    out: Vec<u8>,
}
impl embedded_io::ErrorType for TearOnce {
    type Error = Down;
}
impl embedded_io::Write for TearOnce {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Down> {
        if !self.failed {
            if self.budget == 0 {
                self.failed = true;
                return Err(Down);
            }
            let n = buf.len().min(self.budget);
            self.budget -= n;
            self.out.extend_from_slice(&buf[..n]);
            return Ok(n);
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Down> {
        Ok(())
    }
}

#[test]
fn a_torn_write_never_fuses_a_partial_line_with_the_retry() {
    for budget in [1usize, 10, 59, 70, 130, 176] {
        let mut b: Batch<4, 4096> = Batch::new(BatchFormat::JsonLines);
        for i in 0..3 {
            let id = format!("id-{i}");
            let ev = Event::builder()
                .id(&id)
                .source("/s")
                .ty("t")
                .build()
                .unwrap();
            b.push_ref(&ev).unwrap();
        }
        let mut w = TearOnce {
            budget,
            failed: false,
            out: Vec::new(),
        };
        assert!(b.write_to(&mut w).is_err());
        assert_eq!(b.len(), 3, "a failed write keeps every event");
        assert_eq!(b.write_to(&mut w).unwrap(), 3);
        // Every complete line that parses is one of our events; the retry
        // delivers all three intact; a torn fragment is alone on its line.
        let mut intact = HashSet::new();
        for line in w.out.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            let mut buf = vec![0u8; 256];
            let id = parse_event(line, &mut Scratch::new(&mut buf)).map(|ev| ev.id().to_string());
            if let Ok(id) = id {
                intact.insert(id);
            } else {
                assert!(
                    line.len() < 60,
                    "only a torn prefix may fail to parse: {}",
                    String::from_utf8_lossy(line)
                );
            }
        }
        assert_eq!(
            intact.len(),
            3,
            "budget {budget}: {}",
            String::from_utf8_lossy(&w.out)
        );
    }
}
