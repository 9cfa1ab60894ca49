//! What the tests of a shutdown that gives up early share
//! (`tracing_layer_accounts_for_every_event_it_puts_off.rs`,
//! `shutdown_that_gives_up_early_warns_once.rs`): a sink whose collector
//! holds every request for a minute, an emitter behind it whose worker is
//! waiting out that hold, and 2 000 events `OssaLayer` puts off meanwhile.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ossa_events::sink::{Encoded, Sink};
use ossa_events::tracing_layer::OssaLayer;
use ossa_events::{Emitter, EmitterBuilder, Error, EventBuilder, SendError};
use tracing_subscriber::layer::SubscriberExt as _;

use super::contract::lock;

/// Answers every batch `503` with `Retry-After: 60`: the hold ends past any
/// shutdown deadline here, so shutdown gives up at once. Counts the events
/// it was given.
pub(crate) struct RetryAfterAMinute(pub(crate) Arc<Mutex<usize>>);

impl Sink for RetryAfterAMinute {
    fn send(&mut self, ev: &[Encoded]) -> Result<(), SendError> {
        *lock(&self.0) += ev.len();
        Err(SendError::retryable(
            Error::HttpStatus {
                status: 503,
                body: String::new(),
            },
            Some(Duration::from_secs(60)),
        ))
    }
}

/// An emitter on [`RetryAfterAMinute`] (counting into `calls`) that sends
/// one event a batch, with room for every event put off and a 5 s
/// shutdown: add options, then build, then [`hold_and_put_off`].
pub(crate) fn held_builder(calls: &Arc<Mutex<usize>>) -> EmitterBuilder {
    Emitter::builder("/agents/held")
        .sink(RetryAfterAMinute(calls.clone()))
        .batch_size(1)
        .queue_capacity(100_000)
        .flush_interval(Duration::from_millis(1))
        .shutdown_timeout(Duration::from_secs(5))
}

/// Emits one event and waits (up to 5 s) until the sink was called: the
/// worker then waits out the hold. Then 1 000 spans on this thread, each
/// put off by `OssaLayer` as two events: 2 000 events and the one sent.
pub(crate) fn hold_and_put_off(emitter: &Emitter, calls: &Mutex<usize>) {
    emitter
        .emit(EventBuilder::new().ty("dev.example.tick"))
        .unwrap();
    let start = Instant::now();
    while *lock(calls) == 0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    // This thread's own subscriber (a global one, if any, sees the worker).
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(emitter.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..1000 {
            let key = format!("c{i}");
            let span = tracing::info_span!("chat", gen_ai.conversation.id = key.as_str());
            drop(span.enter());
        }
    });
}
