//! The HTTP sink against a loopback collector that answers 2xx with a body
//! that never ends: the send does not wait out its timeout for a body
//! nobody needs. (A review found it holding every request for the whole
//! request timeout, 10 s by default, while the queue filled.)
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufReader, Write};
use std::time::{Duration, Instant};

use ossa_events::sink::HttpSink;
use ossa_events::{BreakerConfig, Emitter, EventBuilder, RetryPolicy};

use common::{read_request, serve_loopback};

/// An emitter with one attempt per event and a breaker that stays closed:
/// any failure the sink reports shows as a failed event.
fn emitter(sink: HttpSink) -> Emitter {
    Emitter::builder("/a")
        .sink(sink)
        .batch_size(100)
        .flush_interval(Duration::from_secs(60))
        .retry(RetryPolicy::default().max_attempts(1))
        .circuit_breaker(BreakerConfig::default().threshold(1000))
        .build()
        .unwrap()
}

fn emit(em: &Emitter, n: usize) {
    for i in 0..n {
        em.emit(EventBuilder::new().id(&format!("e-{i}")).ty("t"))
            .unwrap();
    }
}

#[test]
fn a_2xx_whose_body_stalls_does_not_hold_the_send_for_its_timeout() {
    // Answers 200 with a body it never finishes, and goes on reading.
    let addr = serve_loopback(None, move |s| {
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        while let Ok(Some(_)) = read_request(&mut r) {
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc");
        }
    });
    let sink = HttpSink::builder(format!("http://{addr}/e"))
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let em = emitter(sink);
    emit(&em, 3);
    let t = Instant::now();
    let r = em.flush().unwrap();
    let took = t.elapsed();
    assert_eq!((r.delivered, r.failed), (3, 0), "{r:?}");
    // Each request waited out its 3 s timeout before: 9 s.
    assert!(took < Duration::from_secs(3), "{took:?}");
}
