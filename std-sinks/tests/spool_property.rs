//! A property test of the spool's contract: random emits, random sink
//! behaviour (all delivered, all retried, some refused for good) and random
//! restarts (the emitter stops with little time, a new one opens the same
//! spool). Invariant at the end, after a last emitter drains: every id that
//! `emit()` accepted was delivered at least once, or reported to
//! `on_undelivered` as failed or dropped — and every reported one was
//! refused by the sink for good (nothing else is given up on with a spool).
//! Each emitter writes the spool through a memory map or with `write(2)`,
//! at random: one reads what the other left.
//!
//! The second property runs the same on a spool at a small byte cap, with
//! each of the policies at the cap (`WhenFull`), a `Block` limit of a few
//! milliseconds: every event `emit()` refused is reported once as dropped
//! and never delivered; every accepted one is delivered, or reported once:
//! as failed when the sink refused it for good; as dropped, or as given up
//! at a shutdown (a segment dropped while its events were also in memory,
//! to be sent from there, and an emitter stopped with them unsent), only
//! when the policy drops the oldest, and then it was not delivered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ossa_events::sink::{Encoded, Sink};
use ossa_events::spool::{SpoolConfig, SyncPolicy, WhenFull};
use ossa_events::{Emitter, Error, EventBuilder, Reason, Retry, RetryPolicy, SendError};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Deliver,
    /// Every send fails, retryably (a collector that is down).
    Down,
    /// Events whose number is a multiple of `k` are refused for good; the
    /// others are delivered.
    Refuse(u32),
}

#[derive(Debug, Clone)]
enum Op {
    Emit(u32),
    Behave(Behaviour),
    /// A new emitter, writing the spool through a memory map or not.
    Restart(bool),
    Flush,
}

#[derive(Clone, Default)]
struct World {
    behaviour: Arc<Mutex<Option<Behaviour>>>,
    delivered: Arc<Mutex<HashMap<String, u32>>>,
    refused: Arc<Mutex<HashSet<String>>>,
    reported: Arc<Mutex<Vec<(Reason, String)>>>,
}

struct TestSink(World);

fn number(id: &str) -> u32 {
    id.trim_start_matches("p-").parse().unwrap()
}

impl Sink for TestSink {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        let b = self
            .0
            .behaviour
            .lock()
            .unwrap()
            .unwrap_or(Behaviour::Deliver);
        match b {
            Behaviour::Deliver => {
                let mut d = self.0.delivered.lock().unwrap();
                for e in events {
                    *d.entry(e.id().to_owned()).or_default() += 1;
                }
                Ok(())
            }
            Behaviour::Down => Err(SendError::retryable(Error::Transport("down".into()), None)),
            Behaviour::Refuse(k) => {
                let mut err: Option<SendError> = None;
                let mut d = self.0.delivered.lock().unwrap();
                for (i, e) in events.iter().enumerate() {
                    if number(e.id()).is_multiple_of(k) {
                        self.0.refused.lock().unwrap().insert(e.id().to_owned());
                        let why = Error::HttpStatus {
                            status: 400,
                            body: String::new(),
                        };
                        err = Some(match err {
                            None => SendError::at(i..i + 1, Retry::No, why),
                            Some(s) => s.and(i..i + 1, Retry::No, why),
                        });
                    } else {
                        *d.entry(e.id().to_owned()).or_default() += 1;
                    }
                }
                err.map_or(Ok(()), Err)
            }
        }
    }
}

/// A new emitter on the spool; with `capped`, the spool at a cap of
/// `capped.0` bytes, `capped.1` there, and `capped.2` as its sync policy.
/// An emitter whose shutdown timed out (20 ms, with a sink that retries)
/// keeps the spool locked until its worker's send returns: the restart
/// waits for it, as a supervisor would.
fn emitter_capped(dir: &PathBuf, w: &World, mapped: bool, capped: Option<Capped>) -> Emitter {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match try_emitter(dir, w, mapped, capped) {
            Err(ossa_events::Error::SpoolLocked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r.unwrap(),
        }
    }
}

fn try_emitter(
    dir: &PathBuf,
    w: &World,
    mapped: bool,
    capped: Option<Capped>,
) -> Result<Emitter, ossa_events::Error> {
    let r = w.reported.clone();
    let mut spool = SpoolConfig::new(dir).segment_bytes(4096).mapped(mapped);
    if let Some((bytes, when_full, sync)) = capped {
        spool = spool.max_bytes(bytes).when_full(when_full).sync(sync);
    }
    Emitter::builder("/agents/prop")
        .sink(TestSink(w.clone()))
        .spool(spool)
        .queue_capacity(8)
        .batch_size(4)
        .flush_interval(Duration::from_millis(2))
        .retry(
            RetryPolicy::default()
                .max_attempts(u32::MAX)
                .base(Duration::from_millis(1))
                .cap(Duration::from_millis(5)),
        )
        .flush_timeout(Duration::from_millis(200))
        .shutdown_timeout(Duration::from_millis(20))
        .on_undelivered(move |u| r.lock().unwrap().push((u.reason, u.id.to_owned())))
        .build()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u32..30).prop_map(Op::Emit),
        2 => prop_oneof![
            Just(Behaviour::Deliver),
            Just(Behaviour::Down),
            (2u32..6).prop_map(Behaviour::Refuse),
        ]
        .prop_map(Op::Behave),
        1 => any::<bool>().prop_map(Op::Restart),
        1 => Just(Op::Flush),
    ]
}

/// What [`run`] saw `emit()` do.
struct Run {
    accepted: Vec<String>,
    /// Ids `emit()` refused, with its error.
    refused_at_emit: Vec<(String, Error)>,
}

/// Runs `ops` on emitters over a spool in a new directory (`prefix`, the
/// case's number), then has a last emitter drain it with a collector that
/// takes everything; checks that it left nothing queued.
fn run(
    prefix: &str,
    w: &World,
    mapped: bool,
    capped: Option<Capped>,
    ops: &[Op],
) -> Result<Run, TestCaseError> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{prefix}_{}_{}",
        std::process::id(),
        CASE.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut em = emitter_capped(&dir, w, mapped, capped);
    let mut seen = Run {
        accepted: Vec::new(),
        refused_at_emit: Vec::new(),
    };
    let mut next = 1u32;
    for op in ops {
        match op {
            Op::Emit(n) => {
                for _ in 0..*n {
                    let id = format!("p-{next}");
                    next += 1;
                    match em.emit(EventBuilder::new().ty("dev.example.tick").id(&id)) {
                        Ok(()) => seen.accepted.push(id),
                        Err(e) => seen.refused_at_emit.push((id, e)),
                    }
                }
            }
            Op::Behave(b) => *w.behaviour.lock().unwrap() = Some(*b),
            Op::Restart(mapped) => {
                let _ = em.shutdown();
                drop(em);
                em = emitter_capped(&dir, w, *mapped, capped);
            }
            Op::Flush => {
                let _ = em.flush();
            }
        }
    }
    // The last emitter, with a collector that takes everything, drains.
    let _ = em.shutdown();
    drop(em);
    *w.behaviour.lock().unwrap() = Some(Behaviour::Deliver);
    let em = emitter_capped(&dir, w, !mapped, capped);
    em.flush().unwrap();
    let m = em.metrics();
    prop_assert_eq!(m.queue_depth, 0, "{:?}", m);
    drop(em);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(seen)
}

static CASE: AtomicU32 = AtomicU32::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_accepted_id_is_delivered_or_reported_with_its_reason(
        mapped in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..25),
    ) {
        let w = World::default();
        let accepted = run("spool_prop", &w, mapped, None, &ops)?.accepted;

        let delivered = w.delivered.lock().unwrap();
        let reported = w.reported.lock().unwrap();
        let refused = w.refused.lock().unwrap();
        for id in &accepted {
            let r: Vec<&Reason> = reported.iter().filter(|(_, i)| i == id).map(|(r, _)| r).collect();
            prop_assert!(
                delivered.contains_key(id) || !r.is_empty(),
                "{} neither delivered nor reported", id
            );
            // Reported only when refused for good, and then as failed, once.
            if !r.is_empty() {
                prop_assert!(refused.contains(id), "{} reported {:?} but never refused", id, r);
                prop_assert_eq!(r.len(), 1, "{} reported {:?}", id, r);
                prop_assert_eq!(*r[0], Reason::Failed);
            }
        }
        // Nothing delivered that was not accepted.
        prop_assert!(delivered.keys().all(|id| accepted.contains(id)));
    }
}

/// A spool's cap in bytes, its policy there, its sync policy.
type Capped = (u64, WhenFull, SyncPolicy);

fn when_full() -> impl Strategy<Value = WhenFull> {
    prop_oneof![
        (1u64..6).prop_map(|ms| WhenFull::Block(Duration::from_millis(ms))),
        Just(WhenFull::DropOldest),
        Just(WhenFull::DropNewest),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn at_the_cap_each_event_ends_delivered_or_reported_once(
        mapped in any::<bool>(),
        // Two to four segments of 4 KiB: a hundred or so of these events.
        cap in 8u64..16,
        policy in when_full(),
        // The upkeep that deletes confirmed segments runs each sync
        // interval, or each second with `Never` and `Always`.
        sync in prop_oneof![
            Just(SyncPolicy::Never),
            Just(SyncPolicy::Always),
            (1u64..200).prop_map(|ms| SyncPolicy::Every(Duration::from_millis(ms))),
        ],
        ops in proptest::collection::vec(op(), 1..25),
    ) {
        let w = World::default();
        let Run { accepted, refused_at_emit } =
            run("spool_prop_cap", &w, mapped, Some((cap * 1024, policy, sync)), &ops)?;
        for (id, e) in &refused_at_emit {
            prop_assert!(matches!(e, Error::SpoolFull), "{} refused: {}", id, e);
        }
        let refused_at_emit: Vec<&str> = refused_at_emit.iter().map(|(id, _)| id.as_str()).collect();

        let delivered = w.delivered.lock().unwrap();
        let reported = w.reported.lock().unwrap();
        let refused = w.refused.lock().unwrap();
        let reasons = |id: &str| -> Vec<Reason> {
            reported.iter().filter(|(_, i)| i == id).map(|(r, _)| *r).collect()
        };
        for &id in &refused_at_emit {
            prop_assert_eq!(reasons(id), vec![Reason::Dropped], "{} refused at emit", id);
            prop_assert!(!delivered.contains_key(id), "{} refused at emit, then delivered", id);
        }
        for id in &accepted {
            let r = reasons(id);
            prop_assert!(r.len() <= 1, "{} reported {:?}", id, r);
            match r.first() {
                None => prop_assert!(delivered.contains_key(id), "{} neither delivered nor reported", id),
                Some(Reason::Failed) => prop_assert!(refused.contains(id), "{} failed, never refused", id),
                // Dropped with the oldest segment while only on disk; or
                // while also in memory, to be sent from there, when an
                // emitter stopped with it unsent: nothing of it was left.
                Some(r @ (Reason::Dropped | Reason::ShutdownTimeout)) => {
                    prop_assert!(
                        matches!(policy, WhenFull::DropOldest),
                        "{} reported {:?} under {:?}", id, r, policy
                    );
                    prop_assert!(!delivered.contains_key(id), "{} reported {:?} and delivered", id, r);
                }
                Some(other) => prop_assert!(false, "{} reported {:?}", id, other),
            }
        }
        // Nothing delivered that was not accepted, nothing reported that
        // was not emitted.
        prop_assert!(delivered.keys().all(|id| accepted.contains(id)));
        prop_assert_eq!(
            reported.len(),
            refused_at_emit.len() + accepted.iter().filter(|id| !reasons(id).is_empty()).count()
        );
    }
}
