//! An `emit` from a thread-local's destructor (a per-thread agent context
//! that says "stopped" as its thread ends) on a thread with events
//! `OssaLayer` put off: the emit builds and queues them first, and the
//! reports of those refused are kept, during that drain, in a thread-local
//! of the library's, which may be gone by then. Reached with `with`, it
//! panicked there, and a panic in a thread-local's destructor aborts the
//! whole process; the reports are made at once instead.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ossa_events::tracing_layer::OssaLayer;
use ossa_events::{Emitter, EventBuilder, Overflow, Reason};
use tracing_subscriber::layer::SubscriberExt as _;

mod common;

/// Emits when its thread ends, and says how that went.
struct SaysStopped(Emitter, Arc<Mutex<Vec<String>>>);

impl Drop for SaysStopped {
    fn drop(&mut self) {
        let r = self.0.emit(EventBuilder::new().ty("dev.example.stopped"));
        self.1.lock().unwrap().push(format!("{r:?}"));
    }
}

thread_local! {
    static CONTEXT: RefCell<Option<SaysStopped>> = const { RefCell::new(None) };
}

/// A GenAI span entered and closed: a start and an end put off.
fn chat(key: &str) {
    let span = tracing::info_span!("chat", gen_ai.conversation.id = key);
    drop(span.enter());
}

#[test]
fn a_drain_of_put_off_events_from_a_thread_locals_destructor() {
    let gate = common::Gate::default();
    let reports: Arc<Mutex<Vec<Reason>>> = Arc::default();
    let log = reports.clone();
    let em = Emitter::builder("/agents/a")
        .sink(gate.sink())
        .queue_capacity(4)
        .batch_size(2)
        .overflow(Overflow::DropNewest)
        .flush_interval(Duration::from_millis(1))
        .on_undelivered(move |u| log.lock().unwrap().push(u.reason))
        .build()
        .unwrap();
    // The queue full: a batch held in the sink, the rest queued.
    for _ in 0..4 {
        em.emit(EventBuilder::new().ty("dev.example.tick")).unwrap();
    }
    let said = Arc::new(Mutex::new(Vec::new()));
    let (mine, told) = (em.clone(), said.clone());
    std::thread::spawn(move || {
        // Set first: its destructor runs after those of the thread-locals
        // the library makes below.
        CONTEXT.with(|c| *c.borrow_mut() = Some(SaysStopped(mine.clone(), told.clone())));
        let subscriber = tracing_subscriber::registry().with(OssaLayer::new(mine.clone()));
        tracing::subscriber::with_default(subscriber, || {
            // Put off, then built by this emit, which finds no room: both
            // refused, their reports kept until the drain ends (this makes
            // the library's thread-local for them).
            chat("c1");
            let r = mine.emit(EventBuilder::new().ty("dev.example.turn"));
            told.lock().unwrap().push(format!("{r:?}"));
            // Put off, and still waiting when the thread ends.
            chat("c2");
        });
    })
    .join()
    .expect("the thread ended without a panic");
    // The destructor's emit built the two events put off and refused them
    // (no room), then its own.
    assert_eq!(
        *said.lock().unwrap(),
        ["Err(QueueFull)", "Err(QueueFull)"],
        "what each emit answered"
    );
    gate.open();
    em.shutdown().unwrap();
    let m = em.metrics();
    assert_eq!(
        (m.emitted, m.delivered, m.dropped),
        (4, 4, 6),
        "the four ticks delivered; two put off, the turn, two put off, the stop refused: {m:?}"
    );
    // Each refused event reported once, the destructor's ones included.
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 6, "{reports:?}");
    assert!(reports.iter().all(|r| *r == Reason::Dropped), "{reports:?}");
}
