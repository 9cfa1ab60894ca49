//! What `on_undelivered` (and `emit --sink otlp`) says about an event the
//! OTLP sink could not deliver is the request's error as `HttpSink` says
//! it: `transport: io: Connection refused …`, not `transport: transport:
//! io: …` (each event's copy of a transport error was wrapped in a second
//! `Error::Transport`, whose text names the kind again).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ossa_events::sink::OtlpSink;
use ossa_events::{Emitter, EventBuilder, Reason, RetryPolicy};

#[test]
fn a_refused_connection_is_said_once() {
    // Nothing listens on port 9: the connection is refused.
    let sink = OtlpSink::builder("http://127.0.0.1:9")
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let said = Arc::new(Mutex::new(Vec::new()));
    let log = said.clone();
    let em = Emitter::builder("/agents/a")
        .sink(sink)
        .retry(RetryPolicy::none())
        .on_undelivered(move |u| {
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((u.reason, u.error.to_string()));
        })
        .build()
        .unwrap();
    // Two lone events (no span open): each is delivered with the request
    // that carries its log-like span, so each fails with it.
    for _ in 0..2 {
        em.emit(EventBuilder::new().ty("dev.example.note")).unwrap();
    }
    let r = em.flush_within(Duration::from_secs(10)).unwrap();
    assert_eq!((r.delivered, r.failed), (0, 2));
    let said = said.lock().unwrap_or_else(PoisonError::into_inner);
    assert_eq!(said.len(), 2, "{said:?}");
    for (reason, text) in said.iter() {
        assert_eq!(*reason, Reason::Failed);
        assert!(text.starts_with("transport: "), "{text}");
        assert!(!text.contains("transport: transport:"), "{text}");
    }
}
