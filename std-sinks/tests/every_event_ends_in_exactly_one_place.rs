//! Every event an [`Emitter`] accepts ends in exactly one place, whatever
//! its sink does: a property test over random fault schedules.
//!
//! Each case builds an emitter over a scripted sink and lets 2–4 threads
//! emit events with known ids, flush now and then, and race a shutdown (or
//! the drop of the last handle). The sink follows a generated script, one
//! entry per call: a delay (none, a few ms, or longer than the shutdown
//! timeout, honouring the send deadline or not), then an answer for each
//! event (delivered, retry later, retry after a few ms, failed for good:
//! `SendError::at(..).and(..)` over random runs, or the whole batch), or a
//! panic; and for the `flush` that follows a delivering call, success, a
//! failure (whole or a run), a panic or a delay. With a `pipeline()` of 2–4
//! it hands out tickets from `start` and checks that `settle` takes them
//! back oldest first, each with its own batch; its `wait_ready`, asked
//! before a settle, says yes, waits and says not yet (the batch stays
//! started while the worker looks at its queue), or panics, by a second
//! script, and must only ever be asked for the oldest ticket. The `on_undelivered`
//! callback records every report and sometimes panics.
//!
//! The sink keeps its own ledger of what it *confirmed* delivered (answered
//! delivered, and the flush after it succeeded). Against that ledger, the
//! callback's reports and the counters, every case checks:
//!
//! 1. every id whose emit returned `Ok` ends in exactly one of delivered
//!    (confirmed by the sink), failed or shutdown-timeout (reported); every
//!    emit that returned `Err` was dropped (`QueueFull`, `ShutDown`) or
//!    rejected, and reported so; no id ends twice, and the sink is never
//!    handed an event it confirmed already;
//! 2. the counters match those sets: `delivered`, `failed`,
//!    `shutdown_timeout`, `dropped`, `rejected`, `emitted` =
//!    `delivered + failed + shutdown_timeout`, `queue_depth` = 0 (when the
//!    case ends with `shutdown()`: after the drop of the last handle no
//!    handle is left to read them from);
//! 3. each undelivered id is reported exactly once (the callback panicking
//!    or not), and nothing the sink confirmed is reported undelivered —
//!    except an answer that came too late: a sink call still running when
//!    shutdown's hard limit gave up on its events;
//! 4. when `flush` returns `Ok`, every id accepted before it was called has
//!    ended already (confirmed by the sink, or reported) and is counted;
//! 5. `shutdown()` (or the drop of the last handle) returns within its
//!    timeout plus 100 ms, and its counters are final: a stuck sink call that
//!    returns later changes none of them.
//!
//! `PROPTEST_CASES` sets the number of cases (default 96: about 10–20 s in
//! debug on two cores).
//!
//! The plain tests at the end are minimal reproductions of what this test
//! (or writing it) found wrong in the worker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ossa_events::sink::{Encoded, SendDeadline, Sink, Ticket};
use ossa_events::{
    BreakerConfig, Emitter, Error, EventBuilder, Metrics, Overflow, Phase, Reason, RetryPolicy,
    SendError,
};
use proptest::collection::vec;
use proptest::prelude::*;

use common::contract::{
    Answer, Delay, Fail, error_of, fail, pause, quiet_scripted_panics, runs_answer, whole,
};

/// How long past its deadline shutdown waits for a stuck sink before it
/// gives up on the open events itself (the worker's `SHUTDOWN_GRACE`).
const GRACE: Duration = Duration::from_millis(50);
/// How far past its timeout a shutdown may return (the bound).
const SHUTDOWN_SLACK: Duration = Duration::from_millis(100);
/// The name of the emitter's worker thread.
const WORKER: &str = "ossa-events-worker";
/// How long to wait, after shutdown returned, for a stuck sink call to
/// return and the worker to end (the longest scripted delay is 300 ms).
const WORKER_END_WAIT: Duration = Duration::from_secs(2);

/// Workers seen still running long after their shutdown (a bug the test
/// reports). They may keep a core busy until the process exits, which
/// makes every later shutdown-time measurement meaningless: once there is
/// one, the time bound is no longer checked, so that shrinking keeps to the
/// real failure.
static RUNAWAY_WORKERS: AtomicUsize = AtomicUsize::new(0);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------
// The script

/// The answer of the `flush` that follows a call that delivered something.
#[derive(Clone, Copy, Debug)]
enum FlushAnswer {
    Ok,
    Whole(Fail),
    /// `SendError::at(start..start + len)`: the worker clamps it to the batch
    /// of the call before (a run outside it fails the whole batch).
    Run(usize, usize, Fail),
    Panic,
}

/// One script entry: what the sink does on one call.
#[derive(Clone, Debug)]
struct Call {
    delay: Delay,
    answer: Answer,
    flush: FlushAnswer,
    flush_delay: Delay,
}

impl Call {
    /// Once the script is spent: deliver everything at once.
    const PLAIN: Call = Call {
        delay: Delay::None,
        answer: Answer::Delivered,
        flush: FlushAnswer::Ok,
        flush_delay: Delay::None,
    };
}

/// What `wait_ready` answers on one call (the worker asks it before a
/// settle while nothing is due and a lane is free).
#[derive(Clone, Copy, Debug)]
enum Ready {
    Yes,
    /// Waits this many ms, cut short by the worker's `until`, and says no:
    /// the worker looks at its queue again and the batch stays started.
    NotYet(u64),
    Panic,
}

fn ready() -> impl Strategy<Value = Ready> {
    prop_oneof![
        3 => Just(Ready::Yes),
        4 => (0u64..=30).prop_map(Ready::NotYet),
        1 => Just(Ready::Panic),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    let delay = prop_oneof![
        24 => Just(Delay::None),
        14 => (0u64..=20).prop_map(Delay::Short),
        1 => (60u64..=300).prop_map(Delay::Polite),
        2 => (60u64..=300).prop_map(Delay::Stuck),
    ];
    let answer = prop_oneof![
        6 => Just(Answer::Delivered),
        2 => fail().prop_map(Answer::Whole),
        4 => vec((0usize..8, 0usize..5, fail()), 1..=3).prop_map(Answer::Runs),
        1 => Just(Answer::Panic),
    ];
    let flush = prop_oneof![
        10 => Just(FlushAnswer::Ok),
        1 => fail().prop_map(FlushAnswer::Whole),
        1 => (0usize..8, 0usize..4, fail()).prop_map(|(s, l, f)| FlushAnswer::Run(s, l, f)),
        1 => Just(FlushAnswer::Panic),
    ];
    let flush_delay = prop_oneof![
        30 => Just(Delay::None),
        6 => (0u64..=10).prop_map(Delay::Short),
        1 => (60u64..=300).prop_map(Delay::Stuck),
    ];
    (delay, answer, flush, flush_delay).prop_map(|(delay, answer, flush, flush_delay)| Call {
        delay,
        answer,
        flush,
        flush_delay,
    })
}

// ---------------------------------------------------------------------------
// What happened, as the emitting threads, the callback and the sink saw it

/// Why an emit returned `Err`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    QueueFull,
    ShutDown,
    Invalid,
}

#[derive(Clone, Debug)]
struct Report {
    id: String,
    reason: Reason,
    /// Made on the worker thread (else on an emitting thread or the one
    /// that shut down).
    on_worker: bool,
}

#[derive(Default)]
struct Book {
    /// Ids whose emit returned `Ok`, in the order the emits returned.
    accepted: Vec<String>,
    refused: Vec<(String, Refusal)>,
    /// Every `on_undelivered` call.
    reports: Vec<Report>,
    reported: HashSet<String>,
    /// The sink's ledger: ids it confirmed delivered, and when.
    confirmed: HashMap<String, Instant>,
    /// A sink call is under way.
    in_call: bool,
    /// The sink is dropped: the worker thread is over.
    sink_dropped: bool,
    /// Broken rules seen where an assertion cannot stop the test (inside
    /// the sink and the callback, whose panics the emitter contains).
    violations: Vec<String>,
}

type SharedBook = Arc<Mutex<Book>>;

fn violation(book: &SharedBook, what: String) {
    lock(book).violations.push(what);
}

// ---------------------------------------------------------------------------
// The scripted sink

/// Events a send or settle answered delivered, waiting for the `flush`
/// the worker calls after it.
struct Pending {
    /// The length of that call's batch (the worker clamps the flush's
    /// error to it).
    n: usize,
    delivered: Vec<(usize, String)>,
    flush: FlushAnswer,
    flush_delay: Delay,
}

struct Scripted {
    book: SharedBook,
    script: VecDeque<Call>,
    pipeline: usize,
    max_batch: usize,
    /// Tickets handed out by `start` and not settled, oldest first.
    tickets: VecDeque<(u64, Vec<String>)>,
    next_ticket: u64,
    pending: Option<Pending>,
    /// The answers of `wait_ready`, one a call; once spent, ready.
    ready: VecDeque<Ready>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        lock(&self.book).sink_dropped = true;
    }
}

fn ids_of(events: &[Encoded]) -> Vec<String> {
    events.iter().map(|e| e.id().to_owned()).collect()
}

impl Scripted {
    /// The start of every send, start and settle: checks what the worker
    /// hands over and takes the next script entry.
    fn begin(&mut self, what: &str, ids: &[String]) -> Call {
        let mut b = lock(&self.book);
        b.in_call = true;
        if let Some(p) = self.pending.take() {
            b.violations.push(format!(
                "{what} of {ids:?} before the flush of {:?}, which the call before delivered",
                p.delivered
            ));
        }
        for id in ids {
            if b.confirmed.contains_key(id) {
                b.violations.push(format!(
                    "{what} of {id}, which the sink confirmed delivered already"
                ));
            }
        }
        self.script.pop_front().unwrap_or(Call::PLAIN)
    }

    fn end(&self) {
        lock(&self.book).in_call = false;
    }

    /// Records `ids` as confirmed delivered.
    fn confirm<'a>(&self, ids: impl IntoIterator<Item = &'a String>) {
        let mut b = lock(&self.book);
        let now = Instant::now();
        for id in ids {
            if b.confirmed.insert(id.clone(), now).is_some() {
                b.violations.push(format!("{id} confirmed delivered twice"));
            }
        }
    }

    /// Plays `call` for a batch of `ids`: the delay, then the answer.
    /// `Ok(true)` for a start whose batch is to be settled later; the
    /// events answered delivered wait for the flush.
    fn play(
        &mut self,
        call: &Call,
        ids: &[String],
        deadline: SendDeadline<'_>,
        starting: bool,
    ) -> Result<bool, SendError> {
        let (result, delivered): (Result<bool, SendError>, Vec<usize>) = match &call.answer {
            // A polite sink that stopped at the deadline: nothing confirmed.
            _ if !pause(call.delay, deadline) => (
                Err(SendError::retryable(Error::Timeout(Phase::Shutdown), None)),
                Vec::new(),
            ),
            Answer::Panic => {
                self.end();
                panic!("scripted sink panic");
            }
            Answer::Delivered if starting => (Ok(true), Vec::new()),
            Answer::Delivered => (Ok(false), (0..ids.len()).collect()),
            Answer::Whole(f) => (Err(whole(*f)), Vec::new()),
            Answer::Runs(runs) => {
                let (err, delivered) = runs_answer(runs, ids.len());
                (Err(err), delivered)
            }
        };
        // What a call delivered (a start's `Err` included: the worker
        // settles it at once) waits for the flush that follows it.
        if !delivered.is_empty() {
            self.pending = Some(Pending {
                n: ids.len(),
                delivered: delivered.iter().map(|&i| (i, ids[i].clone())).collect(),
                flush: call.flush,
                flush_delay: call.flush_delay,
            });
        }
        self.end();
        result
    }
}

impl Sink for Scripted {
    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn pipeline(&self) -> usize {
        self.pipeline
    }

    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        self.send_by(events, SendDeadline::NONE)
    }

    fn send_by(&mut self, events: &[Encoded], deadline: SendDeadline<'_>) -> Result<(), SendError> {
        let ids = ids_of(events);
        let call = self.begin("send", &ids);
        self.play(&call, &ids, deadline, false).map(|_| ())
    }

    fn start(
        &mut self,
        events: &[Encoded],
        deadline: SendDeadline<'_>,
    ) -> Result<Ticket, SendError> {
        if self.pipeline < 2 {
            violation(
                &self.book,
                "start called on a sink without a pipeline".into(),
            );
        }
        let ids = ids_of(events);
        let call = self.begin("start", &ids);
        self.play(&call, &ids, deadline, true)?;
        let n = self.next_ticket;
        self.next_ticket += 1;
        self.tickets.push_back((n, ids));
        Ok(Ticket::new(n))
    }

    fn settle(
        &mut self,
        ticket: Ticket,
        events: &[Encoded],
        deadline: SendDeadline<'_>,
    ) -> Result<(), SendError> {
        let ids = ids_of(events);
        let call = self.begin("settle", &ids);
        match self.tickets.iter().position(|(t, _)| *t == ticket.get()) {
            None => violation(
                &self.book,
                format!(
                    "settle of ticket {} that was never handed out (or settled already)",
                    ticket.get()
                ),
            ),
            Some(pos) => {
                let (_, batch) = self.tickets.remove(pos).expect("found");
                if pos != 0 {
                    violation(
                        &self.book,
                        format!("settle of ticket {} before {pos} older ones", ticket.get()),
                    );
                }
                if batch != ids {
                    violation(
                        &self.book,
                        format!(
                            "settle of ticket {} with {ids:?}, its batch is {batch:?}",
                            ticket.get()
                        ),
                    );
                }
            }
        }
        self.play(&call, &ids, deadline, false).map(|_| ())
    }

    fn wait_ready(&mut self, ticket: Ticket, until: Instant) -> bool {
        {
            let mut b = lock(&self.book);
            if self.pending.is_some() {
                b.violations
                    .push("wait_ready before the flush a delivering call is owed".into());
            }
            if self.tickets.front().map(|t| t.0) != Some(ticket.get()) {
                b.violations.push(format!(
                    "wait_ready of ticket {} that is not the oldest started",
                    ticket.get()
                ));
            }
        }
        match self.ready.pop_front().unwrap_or(Ready::Yes) {
            Ready::Yes => true,
            Ready::NotYet(n) => {
                let end = (Instant::now() + ms(n)).min(until);
                std::thread::sleep(end.saturating_duration_since(Instant::now()));
                false
            }
            Ready::Panic => panic!("scripted wait_ready panic"),
        }
    }

    fn flush(&mut self) -> Result<(), SendError> {
        let Some(p) = self.pending.take() else {
            violation(
                &self.book,
                "flush after a call that delivered nothing".into(),
            );
            return Ok(());
        };
        lock(&self.book).in_call = true;
        pause(p.flush_delay, SendDeadline::NONE);
        let result = match p.flush {
            FlushAnswer::Ok => {
                self.confirm(p.delivered.iter().map(|(_, id)| id));
                Ok(())
            }
            FlushAnswer::Whole(f) => Err(whole(f)),
            FlushAnswer::Run(start, len, f) => {
                // As the worker reads it: clamped to the batch, and a run
                // that names none of it fails all of it.
                let clamped = start.min(p.n)..(start + len).min(p.n);
                let failed = if clamped.is_empty() { 0..p.n } else { clamped };
                self.confirm(
                    p.delivered
                        .iter()
                        .filter(|(i, _)| !failed.contains(i))
                        .map(|(_, id)| id),
                );
                let (retry, e) = error_of(f);
                Err(SendError::at(start..start + len, retry, e))
            }
            FlushAnswer::Panic => {
                self.end();
                panic!("scripted flush panic");
            }
        };
        self.end();
        result
    }
}

// ---------------------------------------------------------------------------
// The scenario

/// What an emitting thread does, in turn.
#[derive(Clone, Copy, Debug)]
enum Act {
    /// Emits this many valid events.
    Emit(usize),
    /// Emits one event with an empty subject (rejected).
    Invalid,
    Flush,
    FlushWithin(u64),
    Sleep(u64),
}

/// How the case ends.
#[derive(Clone, Copy, Debug)]
enum End {
    /// `shutdown()` after this many ms, while the threads may still emit.
    ShutdownWhileEmitting(u64),
    /// `shutdown()` once the threads are done.
    ShutdownAfterJoin,
    /// The drop of the last handle once the threads are done.
    DropAfterJoin,
}

#[derive(Clone, Debug)]
struct Scenario {
    pipeline: usize,
    max_batch: usize,
    script: Vec<Call>,
    ready: Vec<Ready>,
    batch_size: usize,
    queue_capacity: usize,
    block_ms: Option<u64>,
    flush_interval_ms: u64,
    max_attempts: u32,
    breaker_threshold: u32,
    breaker_open_ms: u64,
    shutdown_timeout_ms: u64,
    /// The callback panics on every n-th report (0: never).
    callback_panics_every: u64,
    threads: Vec<Vec<Act>>,
    end: End,
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        8 => (1usize..=6).prop_map(Act::Emit),
        1 => Just(Act::Invalid),
        2 => Just(Act::Flush),
        1 => (0u64..=30).prop_map(Act::FlushWithin),
        2 => (0u64..=10).prop_map(Act::Sleep),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let sink = (
        prop_oneof![Just(1usize), 2usize..=4],
        prop_oneof![3 => Just(usize::MAX), 1 => 1usize..=4],
        (vec(call(), 0..=24), vec(ready(), 0..=24)),
    );
    let emitter = (
        1usize..=8,
        1usize..=40,
        proptest::option::weighted(0.25, 0u64..=5),
        prop_oneof![3 => 1u64..=20, 1 => Just(1000u64)],
        1u32..=4,
        (1u32..=6, 1u64..=30),
        20u64..=250,
        prop_oneof![Just(0u64), 1u64..=4],
    );
    let end = prop_oneof![
        (0u64..=60).prop_map(End::ShutdownWhileEmitting),
        Just(End::ShutdownAfterJoin),
        Just(End::DropAfterJoin),
    ];
    let run = (vec(vec(act(), 0..=10), 2..=4), end);
    (sink, emitter, run).prop_map(
        |(
            (pipeline, max_batch, (script, ready)),
            (
                batch_size,
                queue_capacity,
                block_ms,
                flush_interval_ms,
                max_attempts,
                (breaker_threshold, breaker_open_ms),
                shutdown_timeout_ms,
                callback_panics_every,
            ),
            (threads, end),
        )| Scenario {
            pipeline,
            max_batch,
            script,
            ready,
            batch_size,
            queue_capacity,
            block_ms,
            flush_interval_ms,
            max_attempts,
            breaker_threshold,
            breaker_open_ms,
            shutdown_timeout_ms,
            callback_panics_every,
            threads,
            end,
        },
    )
}

/// One emitting thread: plays `acts`, records every emit's outcome, and
/// checks each flush that returns `Ok`.
fn emitting_thread(t: usize, em: &Emitter, book: &SharedBook, acts: &[Act]) {
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
                        Err(Error::QueueFull) => b.refused.push((id, Refusal::QueueFull)),
                        Err(Error::ShutDown) => b.refused.push((id, Refusal::ShutDown)),
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
            Act::Flush | Act::FlushWithin(_) => {
                let before = lock(book).accepted.clone();
                let r = match *act {
                    Act::FlushWithin(n) => em.flush_within(ms(n)),
                    _ => em.flush(),
                };
                match r {
                    Ok(_) => {
                        let m = em.metrics();
                        let b = lock(book);
                        let open: Vec<&String> = before
                            .iter()
                            .filter(|id| {
                                !b.confirmed.contains_key(*id) && !b.reported.contains(*id)
                            })
                            .collect();
                        let counted = m.delivered + m.failed + m.shutdown_timeout;
                        drop(b);
                        if !open.is_empty() {
                            violation(
                                book,
                                format!(
                                    "{act:?} returned Ok with {open:?} (accepted before it) not ended"
                                ),
                            );
                        }
                        if counted < before.len() as u64 {
                            violation(
                                book,
                                format!(
                                    "{act:?} returned Ok with {} events accepted before it, but only {counted} counted: {m:?}",
                                    before.len()
                                ),
                            );
                        }
                    }
                    Err(Error::Timeout(Phase::Flush)) => {}
                    Err(e) => violation(book, format!("{act:?}: {e:?}")),
                }
            }
            Act::Sleep(n) => std::thread::sleep(ms(n)),
        }
    }
}

/// How the case stopped.
struct Stop {
    /// When `shutdown()` (or the drop) was called.
    at: Instant,
    took: Duration,
    /// Shutdown gave up on a stuck sink at its hard limit.
    hard_limit: bool,
    /// The counters as `shutdown()` returned (none after a drop).
    metrics: Option<Metrics>,
}

fn run_case(s: &Scenario) -> Result<(), TestCaseError> {
    quiet_scripted_panics();
    let book: SharedBook = Arc::default();
    let sink = Scripted {
        book: book.clone(),
        script: s.script.iter().cloned().collect(),
        pipeline: s.pipeline,
        max_batch: s.max_batch,
        tickets: VecDeque::new(),
        next_ticket: 0,
        pending: None,
        ready: s.ready.iter().copied().collect(),
    };
    let timeout = ms(s.shutdown_timeout_ms);
    let cb_book = book.clone();
    let reports = AtomicU64::new(0);
    let every = s.callback_panics_every;
    let em = Emitter::builder("/agents/fault-schedule")
        .sink(sink)
        .batch_size(s.batch_size)
        .queue_capacity(s.queue_capacity)
        .overflow(
            s.block_ms
                .map_or(Overflow::DropNewest, |n| Overflow::Block(ms(n))),
        )
        .flush_interval(ms(s.flush_interval_ms))
        .retry(
            RetryPolicy::default()
                .base(ms(1))
                .cap(ms(5))
                .max_attempts(s.max_attempts),
        )
        .circuit_breaker(
            BreakerConfig::default()
                .threshold(s.breaker_threshold)
                .open_for(ms(s.breaker_open_ms))
                .max_open_for(ms(40)),
        )
        .flush_timeout(Duration::from_secs(5))
        .shutdown_timeout(timeout)
        .on_undelivered(move |u| {
            let n = reports.fetch_add(1, Ordering::Relaxed) + 1;
            let on_worker = std::thread::current().name() == Some(WORKER);
            let mut b = lock(&cb_book);
            let event_id = u.event.map(Encoded::id);
            let expected = if u.reason == Reason::Rejected {
                None
            } else {
                Some(u.id)
            };
            if event_id != expected {
                b.violations.push(format!(
                    "report of {} ({:?}) carries the event {event_id:?}",
                    u.id, u.reason
                ));
            }
            b.reported.insert(u.id.to_owned());
            b.reports.push(Report {
                id: u.id.to_owned(),
                reason: u.reason,
                on_worker,
            });
            drop(b);
            if every > 0 && n.is_multiple_of(every) {
                panic!("scripted callback panic");
            }
        })
        .build()
        .unwrap();

    let threads: Vec<_> = s
        .threads
        .iter()
        .enumerate()
        .map(|(t, acts)| {
            let (em, book, acts) = (em.clone(), book.clone(), acts.clone());
            std::thread::spawn(move || emitting_thread(t, &em, &book, &acts))
        })
        .collect();
    let join = |threads: Vec<std::thread::JoinHandle<()>>| {
        for t in threads {
            t.join().expect("emitting thread");
        }
    };

    let shut = |em: &Emitter| {
        let at = Instant::now();
        let r = em.shutdown();
        let took = at.elapsed();
        let metrics = em.metrics();
        let hard_limit = matches!(r, Err(Error::Timeout(Phase::Shutdown)));
        (
            r,
            Stop {
                at,
                took,
                hard_limit,
                metrics: Some(metrics),
            },
        )
    };
    let (stop, em) = match s.end {
        End::ShutdownWhileEmitting(n) => {
            std::thread::sleep(ms(n));
            let (r, stop) = shut(&em);
            join(threads);
            prop_assert!(r.is_ok() || stop.hard_limit, "shutdown: {r:?}");
            (stop, Some(em))
        }
        End::ShutdownAfterJoin => {
            join(threads);
            let (r, stop) = shut(&em);
            prop_assert!(r.is_ok() || stop.hard_limit, "shutdown: {r:?}");
            (stop, Some(em))
        }
        End::DropAfterJoin => {
            join(threads);
            let at = Instant::now();
            drop(em);
            let took = at.elapsed();
            let stop = Stop {
                at,
                took,
                hard_limit: took >= timeout + GRACE,
                metrics: None,
            };
            (stop, None)
        }
    };

    // 5. Shutdown keeps its time limit.
    if RUNAWAY_WORKERS.load(Ordering::Relaxed) == 0 {
        prop_assert!(
            stop.took <= timeout + SHUTDOWN_SLACK,
            "shutdown with a timeout of {timeout:?} took {:?}",
            stop.took
        );
    }

    // A stuck sink call may outlive the shutdown: wait for the worker to
    // end (it drops the sink last), then read the final state.
    let waited = Instant::now();
    while !lock(&book).sink_dropped && waited.elapsed() < WORKER_END_WAIT {
        std::thread::sleep(ms(2));
    }
    let final_metrics = em.as_ref().map(Emitter::metrics);
    let b = lock(&book);
    if !b.sink_dropped {
        RUNAWAY_WORKERS.fetch_add(1, Ordering::Relaxed);
    }
    prop_assert!(
        b.sink_dropped,
        "the worker has not ended {WORKER_END_WAIT:?} after shutdown returned ({:?} after it \
         was called, timeout {timeout:?}, hard limit: {}); it is {}",
        stop.took,
        stop.hard_limit,
        if b.in_call {
            "still in a sink call"
        } else {
            "out of the sink, so it never stopped (see the_worker_ends_once_shutdown_gave_up)"
        }
    );
    prop_assert!(b.violations.is_empty(), "violations: {:#?}", b.violations);

    // 1 and 3. Where each id ended.
    let accepted: HashSet<&String> = b.accepted.iter().collect();
    prop_assert_eq!(accepted.len(), b.accepted.len(), "an id accepted twice");
    let refused: HashMap<&String, Refusal> = b.refused.iter().map(|(id, r)| (id, *r)).collect();
    let mut reports: HashMap<&String, Vec<&Report>> = HashMap::new();
    let mut rejected_reports = 0u64;
    for r in &b.reports {
        if r.reason == Reason::Rejected {
            // Counted here; their ids are checked by
            // a_rejected_event_is_reported_under_its_own_id.
            rejected_reports += 1;
        } else {
            reports.entry(&r.id).or_default().push(r);
        }
    }
    for (id, rs) in &reports {
        prop_assert!(
            accepted.contains(id) || refused.contains_key(id),
            "report of {} that was never emitted: {:?}",
            id,
            rs
        );
        prop_assert_eq!(rs.len(), 1, "{} reported more than once: {:?}", id, rs);
    }
    for id in b.confirmed.keys() {
        prop_assert!(
            accepted.contains(id),
            "the sink confirmed {id}, which was never accepted"
        );
    }
    let deadline = stop.at + timeout;
    let (mut delivered, mut failed, mut timed_out) = (0u64, 0u64, 0u64);
    for id in &b.accepted {
        let report = reports.get(id).map(|rs| rs[0]);
        match (b.confirmed.get(id), report) {
            (Some(_), None) => delivered += 1,
            (None, Some(r)) if r.reason == Reason::Failed => failed += 1,
            (None, Some(r)) if r.reason == Reason::ShutdownTimeout => timed_out += 1,
            // An answer that came too late: shutdown's hard limit gave up on
            // the event (on the thread that shut down) while the sink call
            // for it was still running past the deadline.
            (Some(at), Some(r))
                if r.reason == Reason::ShutdownTimeout
                    && !r.on_worker
                    && stop.hard_limit
                    && *at >= deadline =>
            {
                timed_out += 1
            }
            (confirmed, r) => prop_assert!(
                false,
                "{} accepted, then confirmed delivered {:?} ({:?} after the shutdown call) and reported {:?} (hard limit: {})",
                id,
                confirmed.is_some(),
                confirmed.map(|at| at.saturating_duration_since(stop.at)),
                r,
                stop.hard_limit
            ),
        }
    }
    let (mut dropped, mut invalid) = (0u64, 0u64);
    for (id, why) in &b.refused {
        prop_assert!(
            !b.confirmed.contains_key(id),
            "{} refused ({:?}) and confirmed",
            id,
            why
        );
        if *why == Refusal::Invalid {
            invalid += 1;
            prop_assert!(
                !reports.contains_key(id),
                "{} rejected, reported {:?}",
                id,
                reports[id]
            );
        } else {
            dropped += 1;
            let r = reports.get(id).map(|rs| rs[0].reason);
            prop_assert_eq!(r, Some(Reason::Dropped), "{} refused ({:?})", id, why);
        }
    }
    prop_assert_eq!(rejected_reports, invalid, "rejected reports");

    // 2. The counters are those sets, and were final when shutdown returned.
    if let (Some(m), Some(at_stop)) = (final_metrics, stop.metrics) {
        let ends = (m.emitted, m.delivered, m.failed, m.shutdown_timeout);
        let expected = (b.accepted.len() as u64, delivered, failed, timed_out);
        prop_assert_eq!(
            ends,
            expected,
            "(emitted, delivered, failed, shutdown_timeout): {:?}",
            m
        );
        prop_assert_eq!(
            (m.dropped, m.rejected),
            (dropped, invalid),
            "(dropped, rejected): {:?}",
            m
        );
        prop_assert_eq!(
            m.emitted,
            m.delivered + m.failed + m.shutdown_timeout,
            "{:?}",
            m
        );
        prop_assert_eq!((m.queue_depth, m.queue_bytes), (0, 0), "{:?}", m);
        let mut later = m;
        if matches!(s.end, End::ShutdownWhileEmitting(_)) {
            // The threads may emit (and be refused) after shutdown returned.
            later.dropped = at_stop.dropped;
            later.rejected = at_stop.rejected;
        }
        prop_assert_eq!(
            later,
            at_stop,
            "the counters changed after shutdown returned (took {:?}, hard limit: {})",
            stop.took,
            stop.hard_limit
        );
    }
    drop(b);
    drop(em);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
        // Each case takes real time (sleeps, timeouts): keep shrinking short,
        // and write no regression files.
        max_shrink_iters: 64,
        max_shrink_time: 20_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_accepted_event_ends_once_whatever_the_sink_does(s in scenario()) {
        run_case(&s)?;
    }
}

// ---------------------------------------------------------------------------
// Minimal reproductions of what the property test (or writing it) found

/// A sink that honours the send deadline: it waits for an acknowledgement
/// that does not come, up to `wait`, and gives up as soon as the shutdown
/// deadline passes. Marks `dropped` when the worker drops it.
struct WaitsForAck {
    wait: Duration,
    dropped: Arc<AtomicBool>,
}

impl Sink for WaitsForAck {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        self.send_by(events, SendDeadline::NONE)
    }
    fn send_by(&mut self, _: &[Encoded], deadline: SendDeadline<'_>) -> Result<(), SendError> {
        let until = Instant::now() + self.wait;
        while Instant::now() < until {
            if deadline.passed() {
                return Err(SendError::retryable(Error::Timeout(Phase::Shutdown), None));
            }
            std::thread::sleep(ms(1));
        }
        Ok(())
    }
}

impl Drop for WaitsForAck {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::Relaxed);
    }
}

/// Once the shutdown deadline has passed, `take_batch` gives up on what is
/// open and goes round its loop again, where `out_of_time()` is still true:
/// the worker spins on its lock for ever, never ends, never drops its sink,
/// and `shutdown()` waits for it until its hard limit and returns
/// `Err(Timeout)` although nothing was stuck.
#[test]
fn the_worker_ends_once_shutdown_gave_up() {
    let dropped = Arc::new(AtomicBool::new(false));
    let em = Emitter::builder("/t")
        .sink(WaitsForAck {
            wait: Duration::from_secs(2),
            dropped: dropped.clone(),
        })
        .flush_interval(ms(1))
        .shutdown_timeout(ms(50))
        .build()
        .unwrap();
    em.emit(EventBuilder::new().id("e1").ty("dev.example.tick"))
        .unwrap();
    std::thread::sleep(ms(20)); // the send waits for its acknowledgement
    let r = em.shutdown();
    let m = em.metrics();
    assert_eq!((m.emitted, m.shutdown_timeout), (1, 1), "{m:?}");
    let t = Instant::now();
    while !dropped.load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(ms(5));
    }
    assert!(
        dropped.load(Ordering::Relaxed),
        "the worker never ended (shutdown returned {r:?})"
    );
    assert!(r.is_ok(), "the sink returned at the deadline: {r:?}");
}

/// A sink call that outlives shutdown's hard limit and then answers
/// "delivered" still adds to `batches` (and an answer "retry" to `retried`)
/// after `shutdown()` returned, though its events were counted as
/// shutdown-timeout already.
#[test]
fn a_late_answer_changes_no_counter_after_shutdown_returned() {
    struct Stuck(Arc<AtomicBool>);
    impl Sink for Stuck {
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            std::thread::sleep(ms(250));
            self.0.store(true, Ordering::Relaxed);
            Ok(())
        }
    }
    let answered = Arc::new(AtomicBool::new(false));
    let em = Emitter::builder("/t")
        .sink(Stuck(answered.clone()))
        .flush_interval(ms(1))
        .shutdown_timeout(ms(20))
        .build()
        .unwrap();
    em.emit(EventBuilder::new().id("e1").ty("dev.example.tick"))
        .unwrap();
    std::thread::sleep(ms(20)); // the send is under way
    let r = em.shutdown();
    assert!(matches!(r, Err(Error::Timeout(Phase::Shutdown))), "{r:?}");
    let at_return = em.metrics();
    assert!(!answered.load(Ordering::Relaxed));
    while !answered.load(Ordering::Relaxed) {
        std::thread::sleep(ms(5));
    }
    std::thread::sleep(ms(50)); // the worker takes the answer in
    assert_eq!(em.metrics(), at_return);
}

/// An event that sets its own id and is rejected at emit is reported to
/// `on_undelivered` under the id the emitter generated for it (and did not
/// use), not under its own.
#[test]
fn a_rejected_event_is_reported_under_its_own_id() {
    let ids = Arc::new(Mutex::new(Vec::new()));
    let log = ids.clone();
    let em = Emitter::builder("/t")
        .sink(ossa_events::sink::NullSink::new())
        .on_undelivered(move |u| lock(&log).push((u.reason, u.id.to_owned())))
        .build()
        .unwrap();
    let r = em.emit(
        EventBuilder::new()
            .id("mine-1")
            .ty("dev.example.tick")
            .subject(""),
    );
    assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
    assert_eq!(*lock(&ids), [(Reason::Rejected, "mine-1".to_owned())]);
}

/// With no shutdown time limit (`Duration::MAX`), an event whose send fails
/// retryably during shutdown is given up on at once as shutdown-timeout
/// (`deliver`'s "too late" test treats "no deadline" as "past it") instead
/// of being retried; with a 5 s limit the same event is delivered.
#[test]
fn an_unlimited_shutdown_retries_instead_of_timing_out() {
    struct FailsOnce(bool);
    impl Sink for FailsOnce {
        fn send(&mut self, _: &[Encoded]) -> Result<(), SendError> {
            if std::mem::replace(&mut self.0, true) {
                return Ok(());
            }
            Err(SendError::retryable(Error::Transport("reset".into()), None))
        }
    }
    for limit in [Duration::from_secs(5), Duration::MAX] {
        let em = Emitter::builder("/t")
            .sink(FailsOnce(false))
            .flush_interval(Duration::from_secs(3600))
            .retry(RetryPolicy::default().base(ms(1)))
            .shutdown_timeout(limit)
            .build()
            .unwrap();
        em.emit(EventBuilder::new().id("e1").ty("dev.example.tick"))
            .unwrap();
        let report = em.shutdown().unwrap();
        assert_eq!(
            (report.delivered, report.shutdown_timeout),
            (1, 0),
            "shutdown limit {limit:?}: {report:?}"
        );
    }
}
