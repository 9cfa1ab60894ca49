//! What the delivery-contract property tests share
//! (`every_event_ends_in_exactly_one_place.rs`,
//! `delivery_contract_over_http_under_random_faults.rs`,
//! `delivery_contract_with_a_spool_under_random_faults.rs`): the threads'
//! scripted acts and how a case ends, the book of what each `emit` answered,
//! the small spool they run with, a one-future executor for the async
//! helpers, and the vocabulary of a scripted sink (how long a call takes,
//! how it fails, the errors it answers).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use ossa_events::sink::SendDeadline;
use ossa_events::spool::{SpoolConfig, SyncPolicy, WhenFull};
use ossa_events::{
    Emitter, Error, EventBuilder, FlushReport, Metrics, Phase, Reason, Retry, SendError,
};
use proptest::prelude::*;

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct T(thread::Thread);
    impl Wake for T {
        fn wake(self: Arc<Self>) {
            self.0.unpark()
        }
    }
    let waker = Waker::from(Arc::new(T(thread::current())));
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        thread::park();
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Act {
    Emit(usize),
    Invalid,
    Flush,
    FlushWithin(u64),
    FlushAsync,
    Sleep(u64),
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum End {
    Shutdown,
    ShutdownWithin(u64),
    ShutdownAsync,
    /// `shutdown_within` these limits (ms) from two threads at once (an
    /// odd second one: `shutdown_async` instead).
    TwoShutdowns(u64, u64),
    /// `shutdown()` after this many ms, the threads still emitting.
    ShutdownWhileEmitting(u64),
    Drop,
}

pub(crate) fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        8 => (1usize..=6).prop_map(Act::Emit),
        2 => (10usize..=40).prop_map(Act::Emit),
        1 => Just(Act::Invalid),
        2 => Just(Act::Flush),
        1 => (0u64..=30).prop_map(Act::FlushWithin),
        1 => Just(Act::FlushAsync),
        2 => (0u64..=10).prop_map(Act::Sleep),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Dropped,
    Invalid,
}

#[derive(Default, Debug)]
pub(crate) struct Book {
    pub(crate) accepted: Vec<String>,
    pub(crate) refused: Vec<(String, Refusal)>,
    /// Reports other than `Rejected`, in order.
    pub(crate) reports: Vec<(Reason, String)>,
    pub(crate) rejected_reports: u64,
    pub(crate) violations: Vec<String>,
}

pub(crate) type SharedBook = Arc<Mutex<Book>>;

pub(crate) fn spool_config(dir: &PathBuf, policy: u8, mapped: bool) -> SpoolConfig {
    let when_full = match policy {
        0 => WhenFull::DropOldest,
        1 => WhenFull::DropNewest,
        _ => WhenFull::Block(ms(3)),
    };
    SpoolConfig::new(dir)
        .segment_bytes(4096)
        .max_bytes(2 * 4096)
        .sync(SyncPolicy::Never)
        .when_full(when_full)
        .mapped(mapped)
}

pub(crate) fn emitting_thread(t: usize, em: &Emitter, book: &SharedBook, acts: &[Act]) {
    let mut n = 0;
    for act in acts {
        match *act {
            Act::Emit(k) => {
                for _ in 0..k {
                    let id = format!("t{t}-e{n}");
                    n += 1;
                    let r = em.emit(EventBuilder::new().id(&id).ty("dev.example.tick"));
                    let mut b = lock(book);
                    match r {
                        Ok(()) => b.accepted.push(id),
                        Err(Error::QueueFull | Error::ShutDown | Error::SpoolFull) => {
                            b.refused.push((id, Refusal::Dropped))
                        }
                        Err(e) => b.violations.push(format!("emit of {id}: {e:?}")),
                    }
                }
            }
            Act::Invalid => {
                let id = format!("t{t}-bad{n}");
                n += 1;
                let r = em.emit(
                    EventBuilder::new()
                        .id(&id)
                        .ty("dev.example.tick")
                        .subject(""),
                );
                let mut b = lock(book);
                match r {
                    Err(Error::Invalid(_)) => b.refused.push((id, Refusal::Invalid)),
                    other => b
                        .violations
                        .push(format!("emit of invalid {id}: {other:?}")),
                }
            }
            Act::Flush | Act::FlushWithin(_) | Act::FlushAsync => {
                let before = lock(book).accepted.clone();
                let r = match *act {
                    Act::FlushWithin(n) => em.flush_within(ms(n)),
                    Act::FlushAsync => block_on(em.flush_async()),
                    _ => em.flush(),
                };
                match r {
                    Ok(report) => {
                        let m = em.metrics();
                        let counted =
                            m.delivered + m.failed + m.shutdown_timeout + m.spooled + m.evicted;
                        if counted < before.len() as u64 {
                            lock(book).violations.push(format!(
                                "{act:?} returned Ok ({report:?}) with {} accepted before it, {counted} ended: {m:?}",
                                before.len()
                            ));
                        }
                    }
                    Err(Error::Timeout(Phase::Flush) | Error::ShutDown) => {}
                    Err(e) => lock(book).violations.push(format!("{act:?}: {e:?}")),
                }
            }
            Act::Sleep(n) => thread::sleep(ms(n)),
        }
    }
}

/// How a case ended ([`run_and_end`]).
pub(crate) struct Ended {
    /// What the (first) shutdown call answered (`Ok` with an empty report
    /// for a drop).
    pub(crate) result: Result<FlushReport, Error>,
    /// How long it took.
    pub(crate) took: Duration,
    /// The counters as it returned (none for a drop).
    pub(crate) at_stop: Option<Metrics>,
    /// The emitter, still held (none for a drop).
    pub(crate) em: Option<Emitter>,
    /// The shortest limit a shutdown call was given: the deadline (the
    /// first call's holds).
    pub(crate) first_limit: Duration,
    /// When the stop began.
    pub(crate) stop_at: Instant,
}

/// Runs a case's emitting `threads` (their acts) on `em`, ends it as `end`
/// says, and checks what every case checks of the end: the shutdown answered
/// `Ok` or its time-out, its report is the counters as it returned, and it
/// took no longer than its longest limit (and a second).
pub(crate) fn run_and_end(
    em: Emitter,
    book: &SharedBook,
    threads: &[Vec<Act>],
    end: End,
    shutdown_timeout_ms: u64,
) -> Result<Ended, TestCaseError> {
    let threads: Vec<_> = threads
        .iter()
        .enumerate()
        .map(|(t, acts)| {
            let (em, book, acts) = (em.clone(), book.clone(), acts.clone());
            thread::spawn(move || emitting_thread(t, &em, &book, &acts))
        })
        .collect();
    let join = |threads: Vec<thread::JoinHandle<()>>| {
        for t in threads {
            t.join().expect("emitting thread");
        }
    };
    // The longest limit a shutdown call was given (what it may take), and
    // the shortest (the deadline: the first call's holds).
    let mut limit = ms(shutdown_timeout_ms);
    let mut first_limit = limit;
    let stop_at;
    let (r, took, at_stop, em): (_, Duration, Option<Metrics>, Option<Emitter>) = match end {
        End::Drop => {
            join(threads);
            let at = Instant::now();
            stop_at = at;
            drop(em);
            (Ok(Default::default()), at.elapsed(), None, None)
        }
        End::Shutdown | End::ShutdownWithin(_) | End::ShutdownAsync => {
            join(threads);
            let at = Instant::now();
            stop_at = at;
            let r = match end {
                End::ShutdownWithin(n) => {
                    limit = ms(n);
                    first_limit = limit;
                    em.shutdown_within(ms(n))
                }
                End::ShutdownAsync => block_on(em.shutdown_async()),
                _ => em.shutdown(),
            };
            let took = at.elapsed();
            (r, took, Some(em.metrics()), Some(em))
        }
        End::TwoShutdowns(a, b) => {
            join(threads);
            let at = Instant::now();
            stop_at = at;
            // An odd `b`: `shutdown_async`, with the configured timeout.
            let second = if b % 2 == 1 { shutdown_timeout_ms } else { b };
            limit = ms(a.max(second));
            first_limit = ms(a.min(second));
            let other = em.clone();
            let t = thread::spawn(move || {
                if b % 2 == 1 {
                    block_on(other.shutdown_async())
                } else {
                    other.shutdown_within(ms(b))
                }
            });
            let r = em.shutdown_within(ms(a));
            let r2 = t.join().expect("shutdown thread");
            let took = at.elapsed();
            if let Ok(rep) = &r2 {
                let m = em.metrics();
                prop_assert_eq!(
                    (rep.delivered, rep.failed, rep.shutdown_timeout, rep.pending),
                    (m.delivered, m.failed, m.shutdown_timeout, 0),
                    "second shutdown's report {:?}, counters {:?}",
                    rep,
                    m
                );
            }
            prop_assert!(
                matches!(r2, Ok(_) | Err(Error::Timeout(Phase::Shutdown))),
                "second shutdown: {:?}",
                r2
            );
            (r, took, Some(em.metrics()), Some(em))
        }
        End::ShutdownWhileEmitting(n) => {
            thread::sleep(ms(n));
            let at = Instant::now();
            stop_at = at;
            let r = em.shutdown();
            let took = at.elapsed();
            let m = em.metrics();
            join(threads);
            (r, took, Some(m), Some(em))
        }
    };
    prop_assert!(
        matches!(r, Ok(_) | Err(Error::Timeout(Phase::Shutdown))),
        "shutdown: {:?}",
        r
    );
    // The shutdown's report is the counters as it returned, nothing pending.
    if let (Ok(rep), Some(m)) = (&r, at_stop) {
        prop_assert_eq!(
            (rep.delivered, rep.failed, rep.shutdown_timeout, rep.pending),
            (m.delivered, m.failed, m.shutdown_timeout, 0),
            "shutdown report {:?}, counters {:?}",
            rep,
            m
        );
    }
    prop_assert!(
        took <= limit + ms(1000),
        "shutdown with a limit of {:?} took {:?}",
        limit,
        took
    );
    Ok(Ended {
        result: r,
        took,
        at_stop,
        em,
        first_limit,
        stop_at,
    })
}

// ---------------------------------------------------------------------------
// A scripted sink's vocabulary

/// Keeps the scripted panics (sink, callback) out of the test output; any
/// other panic, an assertion included, goes to the default hook.
pub(crate) fn quiet_scripted_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info.payload().downcast_ref::<&str>().copied();
            if !msg.is_some_and(|m| m.starts_with("scripted")) {
                default(info);
            }
        }));
    });
}

/// How long a sink call takes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Delay {
    None,
    /// Sleeps this many ms.
    Short(u64),
    /// Up to this many ms, but stops as soon as the send deadline passes and
    /// then answers "timed out, retry": a sink that honours `send_by`'s deadline.
    Polite(u64),
    /// This many ms whatever the deadline: a stuck sink.
    Stuck(u64),
}

/// How an event (or a run of them) failed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fail {
    Later,
    /// `Retry-After` of this many ms.
    After(u64),
    Never,
}

/// A sink's answer to `send_by`, `start` or `settle`.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    Delivered,
    /// `SendError::retryable` / `fatal`: the whole batch.
    Whole(Fail),
    /// `SendError::at(..).and(..)` over runs `start..start + len`: they may
    /// overlap (the first wins), be empty, or reach past the batch.
    Runs(Vec<(usize, usize, Fail)>),
    Panic,
}

pub(crate) fn fail() -> impl Strategy<Value = Fail> {
    prop_oneof![
        Just(Fail::Later),
        (1u64..=5).prop_map(Fail::After),
        Just(Fail::Never),
    ]
}

pub(crate) fn error_of(f: Fail) -> (Retry, Error) {
    match f {
        Fail::Later => (
            Retry::LATER,
            Error::Transport("scripted: connection reset".into()),
        ),
        Fail::After(n) => (
            Retry::Yes { after: Some(ms(n)) },
            Error::HttpStatus {
                status: 503,
                body: "scripted: busy".into(),
            },
        ),
        Fail::Never => (
            Retry::No,
            Error::HttpStatus {
                status: 400,
                body: "scripted: bad event".into(),
            },
        ),
    }
}

pub(crate) fn whole(f: Fail) -> SendError {
    match error_of(f) {
        (Retry::No, e) => SendError::fatal(e),
        (_, e) => SendError::retryable(
            e,
            if let Fail::After(n) = f {
                Some(ms(n))
            } else {
                None
            },
        ),
    }
}

/// Sleeps as `d` says; `false` when a polite sleep stopped at the deadline.
pub(crate) fn pause(d: Delay, deadline: SendDeadline<'_>) -> bool {
    match d {
        Delay::None => true,
        Delay::Short(n) | Delay::Stuck(n) => {
            std::thread::sleep(ms(n));
            true
        }
        Delay::Polite(n) => {
            let until = Instant::now() + ms(n);
            while Instant::now() < until {
                if deadline.passed() {
                    return false;
                }
                std::thread::sleep(ms(1));
            }
            true
        }
    }
}

/// [`Answer::Runs`] for a call of `n` events: the error naming each run,
/// and the events delivered. An answer that names no event of the call
/// (runs past its end, or empty) fails all of it: the worker never counts
/// delivered what the sink did not confirm.
pub(crate) fn runs_answer(runs: &[(usize, usize, Fail)], n: usize) -> (SendError, Vec<usize>) {
    let mut err: Option<SendError> = None;
    for &(start, len, f) in runs {
        let (retry, e) = error_of(f);
        let r = start..start + len;
        err = Some(match err {
            None => SendError::at(r, retry, e),
            Some(err) => err.and(r, retry, e),
        });
    }
    let named = |i: usize| runs.iter().any(|&(s, l, _)| (s..s + l).contains(&i));
    let delivered = if (0..n).any(named) {
        (0..n).filter(|&i| !named(i)).collect()
    } else {
        Vec::new()
    };
    (err.expect("at least one run"), delivered)
}
