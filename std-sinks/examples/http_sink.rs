//! HTTP sink: deliver an agent run to a CloudEvents HTTP collector, in
//! batched mode (`application/cloudevents-batch+json`), with retries.
//!
//! ```sh
//! cargo run -p ossa-events --example http_sink
//! cargo run -p ossa-events --example http_sink -- http://127.0.0.1:8080/
//! OSSA_COLLECTOR_URL=http://127.0.0.1:8080/ cargo run -p ossa-events --example http_sink
//! ```
//!
//! With a collector URL (the argument, else `OSSA_COLLECTOR_URL`; e.g. one
//! started with `cargo run -p ossa-events -- listen --http 127.0.0.1:8080`),
//! the events go there. Without one, the example starts the crate's own
//! receiver on a free loopback port and prints on stdout, as JSON Lines, the
//! 15 events of the demo agent run as that receiver got them. On stderr:
//!
//! ```text
//! collector: http://127.0.0.1:41517/ (in-process receiver)
//! delivered 15 of 15 events in 2 batches (retried 0, failed 0)
//! receiver: 15 events in 2 requests, 2 accepted, 0 rejected
//! ```

use std::error::Error;
use std::time::Duration;

use ossa_events::format::json;
use ossa_events::receiver::{Receiver, ReceiverConfig};
use ossa_events::sink::{HttpMode, HttpSink};
use ossa_events::{Emitter, Event, FastIds, SystemClock, demo};

fn main() -> Result<(), Box<dyn Error>> {
    let given = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("OSSA_COLLECTOR_URL").ok())
        .filter(|u| !u.is_empty());

    // No collector given: run one in this process.
    let (url, receiver) = match given {
        Some(url) => {
            eprintln!("collector: {url}");
            (url, None)
        }
        None => {
            let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())?;
            // Called for each event of a request once the whole request is valid.
            let handle = rx.spawn(|ev: &Event<'_>| match json::to_vec(ev) {
                Ok(line) => println!("{}", String::from_utf8_lossy(&line)),
                Err(e) => eprintln!("receiver: cannot re-encode {}: {e}", ev.id()),
            })?;
            let url = format!("http://{}/", handle.local_addr());
            eprintln!("collector: {url} (in-process receiver)");
            (url, Some(handle))
        }
    };

    let sink = HttpSink::builder(&url)
        .mode(HttpMode::Batched)
        .header("User-Agent", "ossa-events-example")
        .timeout(Duration::from_secs(5))
        .build()?;
    let emitter = Emitter::builder("/ossa/demo/researcher")
        .sink(sink)
        .batch_size(10)
        .flush_timeout(Duration::from_secs(30))
        .build()?;

    // The demo run builds complete events (ids, times, OSSA extensions);
    // `emit_event` queues each one exactly as it is.
    let emitted = demo::agent_run("/ossa/demo/researcher", &SystemClock, &mut FastIds, |ev| {
        emitter.emit_event(ev)
    })?;

    // Waits until every event is delivered or given up on (at most the
    // flush timeout: a collector that does not answer is retried until
    // then); the shutdown gives what is still queued its own timeout.
    let flushed = emitter.flush();
    let shut = emitter.shutdown();
    let m = emitter.metrics();
    eprintln!(
        "delivered {} of {emitted} events in {} batches (retried {}, failed {})",
        m.delivered, m.batches, m.retried, m.failed
    );

    if let Some(handle) = receiver {
        let stats = handle.shutdown();
        eprintln!(
            "receiver: {} events in {} requests, {} accepted, {} rejected",
            stats.events,
            stats.requests,
            stats.accepted,
            stats.rejected_4xx + stats.rejected_5xx
        );
    }
    // A wrong URL or a collector that never answers ends here, counts said.
    if flushed.is_err() || m.delivered != emitted as u64 {
        let lost = (emitted as u64).saturating_sub(m.delivered);
        return Err(format!("{lost} of {emitted} events not delivered to {url}").into());
    }
    shut?;
    Ok(())
}
