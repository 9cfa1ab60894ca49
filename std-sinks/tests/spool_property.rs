//! A property test of the spool's contract: random emits, random sink
//! behaviour (all delivered, all retried, some refused for good) and random
//! restarts (the emitter stops with little time, a new one opens the same
//! spool). Invariant at the end, after a last emitter drains: every id that
//! `emit()` accepted was delivered at least once, or reported to
//! `on_undelivered` as failed or dropped — and every reported one was
//! refused by the sink for good (nothing else is given up on with a spool).
//! Each emitter writes the spool through a memory map or with `write(2)`,
//! at random: one reads what the other left.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ossa_events::sink::{Encoded, Sink};
use ossa_events::spool::SpoolConfig;
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

/// A new emitter on the spool. An emitter whose shutdown timed out (20 ms,
/// with a sink that retries) keeps the spool locked until its worker's send
/// returns: the restart waits for it, as a supervisor would.
fn emitter(dir: &PathBuf, w: &World, mapped: bool) -> Emitter {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match try_emitter(dir, w, mapped) {
            Err(ossa_events::Error::SpoolLocked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r.unwrap(),
        }
    }
}

fn try_emitter(dir: &PathBuf, w: &World, mapped: bool) -> Result<Emitter, ossa_events::Error> {
    let r = w.reported.clone();
    Emitter::builder("/agents/prop")
        .sink(TestSink(w.clone()))
        .spool(SpoolConfig::new(dir).segment_bytes(4096).mapped(mapped))
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

static CASE: AtomicU32 = AtomicU32::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_accepted_id_is_delivered_or_reported_with_its_reason(
        mapped in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..25),
    ) {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "spool_prop_{}_{}",
            std::process::id(),
            CASE.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let w = World::default();
        let mut em = emitter(&dir, &w, mapped);
        let mut accepted: Vec<String> = Vec::new();
        let mut next = 1u32;
        for op in &ops {
            match op {
                Op::Emit(n) => {
                    for _ in 0..*n {
                        let id = format!("p-{next}");
                        next += 1;
                        if em.emit(EventBuilder::new().ty("dev.example.tick").id(&id)).is_ok() {
                            accepted.push(id);
                        }
                    }
                }
                Op::Behave(b) => *w.behaviour.lock().unwrap() = Some(*b),
                Op::Restart(mapped) => {
                    let _ = em.shutdown();
                    drop(em);
                    em = emitter(&dir, &w, *mapped);
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
        let em = emitter(&dir, &w, !mapped);
        em.flush().unwrap();
        let m = em.metrics();
        prop_assert_eq!(m.queue_depth, 0, "{:?}", m);
        drop(em);

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
        let _ = std::fs::remove_dir_all(&dir);
    }
}
