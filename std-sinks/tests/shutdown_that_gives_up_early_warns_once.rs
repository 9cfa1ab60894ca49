//! A shutdown that gives up before its deadline (a `Retry-After` that ends
//! past it) logs its give-up once, with the count of the events it gave up
//! on, however many looks the worker takes to build what `OssaLayer` put
//! off and give it up too. Each look logged a warning of its own: with
//! batches of one, 2 000 events put off were 2 000 warnings.
//!
//! The worker thread logs to the global subscriber: this file sets it, so
//! it holds this one test alone.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::layer::SubscriberExt as _;

mod common;

/// A warning: its message and its `events` field (if any).
#[derive(Debug, Clone)]
struct Warning {
    message: String,
    events: Option<u64>,
}

/// Keeps every warning logged.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<Warning>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() != tracing::Level::WARN {
            return;
        }
        struct Fields(Warning);
        impl tracing::field::Visit for Fields {
            fn record_u64(&mut self, f: &tracing::field::Field, v: u64) {
                if f.name() == "events" {
                    self.0.events = Some(v);
                }
            }
            fn record_i64(&mut self, f: &tracing::field::Field, v: i64) {
                if f.name() == "events" {
                    self.0.events = u64::try_from(v).ok();
                }
            }
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" {
                    self.0.message = format!("{v:?}");
                }
            }
        }
        let mut fields = Fields(Warning {
            message: String::new(),
            events: None,
        });
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(fields.0);
    }
}

#[test]
fn a_shutdown_that_gives_up_early_warns_once_with_the_count() {
    let warnings = Warnings::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(warnings.clone()))
        .unwrap();
    let calls = Arc::new(Mutex::new(0usize));
    let emitter = common::held::held_builder(&calls).build().unwrap();
    // The worker waits out the hold; the layer puts off 2 000 events (on
    // this thread's own subscriber: the worker's warnings go to the global
    // one).
    common::held::hold_and_put_off(&emitter, &calls);
    // Left to the worker to build (a `shutdown()` builds what fits first,
    // on its own thread).
    let done = common::contract::block_on(emitter.shutdown_async());
    assert!(done.is_ok(), "{done:?}");
    let m = emitter.metrics();
    assert_eq!((m.emitted, m.shutdown_timeout), (2001, 2001), "{m:?}");
    let warnings = warnings.0.lock().unwrap_or_else(PoisonError::into_inner);
    let gave_up: Vec<&Warning> = warnings
        .iter()
        .filter(|w| w.message.contains("giving up"))
        .collect();
    // The first event, given up on in its retry wait, is settled (and
    // logged) on its own; the rest in one give-up.
    assert!(
        warnings.len() <= 3,
        "{} warnings, the first {:?}",
        warnings.len(),
        &warnings[..warnings.len().min(5)]
    );
    assert_eq!(gave_up.len(), 1, "{warnings:?}");
    let counted: u64 = warnings.iter().filter_map(|w| w.events).sum();
    assert_eq!(counted, 2001, "{warnings:?}");
}
