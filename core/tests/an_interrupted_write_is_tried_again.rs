//! `ErrorKind::Interrupted` from the writer (a signal during a `write(2)`
//! behind `embedded_io_adapters`' `FromStd`) means nothing was written and
//! the call may be made again, as `std`'s `write_all` does. A drain, the
//! emitter's flush and `io::write_all` try again at once, up to 8 times in a
//! row: the reader gets the clean lines, with no junk line and no failed
//! write counted. The 9th in a row is an error like another, so a writer
//! that only ever answers it cannot hold the caller forever.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use embedded_io::{ErrorKind, ErrorType, Write};
use ossa_events_core::batch::DrainError;
use ossa_events_core::emitter::{Config, Emitter};
use ossa_events_core::io::{WriteError, write_all};
use ossa_events_core::{Batch, BatchFormat, Event, FixedClock, RandomIds, Timestamp};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Interrupted,
    Other,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for Fault {}

impl embedded_io::Error for Fault {
    fn kind(&self) -> ErrorKind {
        match self {
            Fault::Interrupted => ErrorKind::Interrupted,
            Fault::Other => ErrorKind::Other,
        }
    }
}

/// Answers each call from a script: `Some(n)` interrupted calls before the
/// call goes through (taking at most `chunk` bytes), for `write` and
/// `flush` alike; past the script, every call goes through.
struct Scripted {
    out: Vec<u8>,
    script: Vec<u8>,
    at: usize,
    pending: Option<u8>,
    chunk: usize,
    flushed: usize,
    calls: usize,
}

impl Scripted {
    fn new(script: Vec<u8>, chunk: usize) -> Self {
        Scripted {
            out: Vec::new(),
            script,
            at: 0,
            pending: None,
            chunk,
            flushed: 0,
            calls: 0,
        }
    }
    /// Whether this call is interrupted.
    fn interrupt(&mut self) -> bool {
        self.calls += 1;
        let left = self
            .pending
            .get_or_insert_with(|| self.script.get(self.at).copied().unwrap_or(0));
        if *left > 0 {
            *left -= 1;
            return true;
        }
        self.pending = None;
        self.at += 1;
        false
    }
}

impl ErrorType for Scripted {
    type Error = Fault;
}

impl Write for Scripted {
    fn write(&mut self, b: &[u8]) -> Result<usize, Fault> {
        if self.interrupt() {
            return Err(Fault::Interrupted);
        }
        let n = b.len().min(self.chunk);
        self.out.extend_from_slice(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> Result<(), Fault> {
        if self.interrupt() {
            return Err(Fault::Interrupted);
        }
        self.flushed = self.out.len();
        Ok(())
    }
}

async fn drain_async(
    batch: &mut Batch<8, 4096>,
    w: &mut Scripted,
) -> Result<usize, DrainError<Fault>> {
    batch.write_to_async(w).await
}

impl embedded_io_async::Write for Scripted {
    async fn write(&mut self, b: &[u8]) -> Result<usize, Fault> {
        Write::write(self, b)
    }
    async fn flush(&mut self) -> Result<(), Fault> {
        Write::flush(self)
    }
}

fn block_on<F: core::future::Future>(f: F) -> F::Output {
    let mut f = core::pin::pin!(f);
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    loop {
        if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn event(i: usize) -> Event<'static> {
    let id: &'static str = Box::leak(format!("ev-{i}").into_boxed_str());
    Event::builder()
        .id(id)
        .source("/s")
        .ty("t")
        .build()
        .unwrap()
}

/// The batch's bytes as a clean drain writes them.
fn clean(format: BatchFormat, n: usize) -> Vec<u8> {
    let mut batch: Batch<8, 4096> = Batch::new(format);
    for i in 0..n {
        batch.push_ref(&event(i)).unwrap();
    }
    let mut w = Scripted::new(Vec::new(), usize::MAX);
    batch.write_to(&mut w).unwrap();
    w.out
}

#[test]
fn interrupted_writes_and_flushes_are_tried_again_and_the_reader_gets_clean_lines() {
    for format in [BatchFormat::JsonLines, BatchFormat::JsonBatch] {
        let mut batch: Batch<8, 4096> = Batch::new(format);
        for i in 0..3 {
            batch.push_ref(&event(i)).unwrap();
        }
        // 8 interrupted calls before each of the first writes, and before the flush.
        let mut w = Scripted::new(vec![8; 64], 7);
        assert_eq!(batch.write_to(&mut w), Ok(3), "{format:?}");
        assert_eq!(w.out, clean(format, 3), "{format:?}");
        assert_eq!(w.flushed, w.out.len());
        assert!(batch.is_empty());
    }
}

#[test]
fn a_ninth_interruption_in_a_row_fails_the_drain_and_nothing_is_lost() {
    let mut batch: Batch<8, 4096> = Batch::new(BatchFormat::JsonLines);
    for i in 0..2 {
        batch.push_ref(&event(i)).unwrap();
    }
    let mut w = Scripted::new(vec![9], usize::MAX);
    assert_eq!(
        batch.write_to(&mut w),
        Err(DrainError::Io(Fault::Interrupted))
    );
    assert_eq!(w.calls, 9, "8 tries again, then the error");
    assert_eq!(batch.len(), 2, "kept for the next drain");
    // The next drain: the same two lines (the failed call wrote nothing;
    // the batch, not knowing that, starts after a `\n`).
    assert_eq!(batch.write_to(&mut w), Ok(2));
    let text = String::from_utf8(w.out).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    // An interruption on the flush, 9 in a row: the flush fails.
    batch.push_ref(&event(3)).unwrap();
    let mut w = Scripted::new(vec![0, 9], usize::MAX);
    assert_eq!(
        batch.write_to(&mut w),
        Err(DrainError::Io(Fault::Interrupted))
    );
    assert_eq!(batch.len(), 1);
}

#[test]
fn a_fault_other_than_interrupted_is_not_tried_again() {
    struct Broken(usize);
    impl ErrorType for Broken {
        type Error = Fault;
    }
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> Result<usize, Fault> {
            self.0 += 1;
            Err(Fault::Other)
        }
        fn flush(&mut self) -> Result<(), Fault> {
            Ok(())
        }
    }
    let mut batch: Batch<8, 4096> = Batch::new(BatchFormat::JsonLines);
    batch.push_ref(&event(0)).unwrap();
    let mut w = Broken(0);
    assert_eq!(batch.write_to(&mut w), Err(DrainError::Io(Fault::Other)));
    assert_eq!(w.0, 1);
    assert_eq!(write_all(&mut w, b"abc"), Err(WriteError::Io(Fault::Other)));
    assert_eq!(w.0, 2);
}

#[test]
fn write_all_tries_an_interrupted_write_again() {
    let mut w = Scripted::new(vec![3, 8, 1], 2);
    assert_eq!(write_all(&mut w, b"hello"), Ok(()));
    assert_eq!(w.out, b"hello");
    let mut w = Scripted::new(vec![9], 2);
    assert_eq!(
        write_all(&mut w, b"hello"),
        Err(WriteError::Io(Fault::Interrupted))
    );
    assert!(w.out.is_empty());
}

#[test]
fn the_emitter_counts_no_failed_write_for_an_interrupted_one() {
    let mut n = 0u8;
    let ids = RandomIds(move |b: &mut [u8; 16]| {
        n += 1;
        b.fill(n)
    });
    let clock = FixedClock(Timestamp::UNIX_EPOCH);
    let w = Scripted::new(vec![5; 32], 11);
    let mut em: Emitter<'_, _, _, _, 4, 2048> = Emitter::new(Config::new("/s"), w, ids, clock);
    for _ in 0..10 {
        em.emit(Event::builder().ty("t")).unwrap();
    }
    em.flush().unwrap();
    let c = em.counters();
    assert_eq!(
        (c.delivered, c.failed_writes, c.dropped),
        (10, 0, 0),
        "{c:?}"
    );
    let text = String::from_utf8(em.writer().out.clone()).unwrap();
    assert_eq!(text.lines().count(), 10, "{text}");
    assert!(
        text.lines().all(|l| l.starts_with('{') && l.ends_with('}')),
        "{text}"
    );
}

proptest! {
    /// Any schedule of up to 8 interruptions before each call, with any
    /// short writes, sync or async: one drain, the same bytes as a clean one.
    #[test]
    fn any_schedule_of_interruptions_gives_the_clean_bytes(
        script in proptest::collection::vec(0u8..=8, 0..40),
        chunk in prop_oneof![Just(1usize), 2usize..200, Just(usize::MAX)],
        n in 1usize..=8,
        batch_format in any::<bool>(),
        sync in any::<bool>(),
    ) {
        let format = if batch_format { BatchFormat::JsonBatch } else { BatchFormat::JsonLines };
        let mut batch: Batch<8, 4096> = Batch::new(format);
        for i in 0..n {
            batch.push_ref(&event(i)).unwrap();
        }
        let mut w = Scripted::new(script, chunk);
        let r = if sync { batch.write_to(&mut w) } else { block_on(drain_async(&mut batch, &mut w)) };
        prop_assert_eq!(r, Ok(n));
        prop_assert_eq!(w.out, clean(format, n));
    }
}

/// A payload written straight to the writer (`write_payload`) tries an
/// interrupted write or flush again too.
#[test]
fn write_payload_tries_an_interrupted_write_again() {
    use ossa_events_core::json::ser::{SerError, write_payload};
    let payload = (1, "two", [3.5], "x".repeat(300));
    let want = serde_json::to_vec(&payload).unwrap();
    let mut w = Scripted::new(vec![8; 16], 5);
    write_payload(&mut w, &payload).unwrap();
    assert_eq!(w.out, want);
    let mut w = Scripted::new(vec![9], 5);
    assert!(matches!(
        write_payload(&mut w, &payload),
        Err(SerError::Write(WriteError::Io(Fault::Interrupted)))
    ));
}
