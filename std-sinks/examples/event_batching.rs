//! Event batching: the emitter sends a batch as soon as it is full, and sends
//! a partial batch once the flush interval has passed since its oldest event,
//! with no further emit or `flush()` needed.
//!
//! ```sh
//! cargo run -p ossa-events --example event_batching
//! ```
//!
//! Emits 12 events with a batch size of 5 and a flush interval of 250 ms.
//! Prints the 12 events on stdout as JSON Lines and, on stderr, each batch as
//! the sink receives it, then the emitter's metrics:
//!
//! ```text
//! batch size 5, flush interval 250 ms: emitting 12 events
//! [   0 ms] batch 1: 5 events (full)
//! [   0 ms] batch 2: 5 events (full)
//! [ 250 ms] batch 3: 2 events (partial: the flush interval passed)
//! metrics: emitted 12, delivered 12, batches 3, failed 0, dropped 0
//! ```

use std::error::Error;
use std::thread;
use std::time::{Duration, Instant};

use ossa_events::sink::{Encoded, Encoding, Sink, WriterSink};
use ossa_events::{Emitter, RawJson, SendError, ossa};

const BATCH_SIZE: usize = 5;
const FLUSH_INTERVAL: Duration = Duration::from_millis(250);
const EVENTS: usize = 12;

/// Wraps a sink to tell, on stderr, what each batch it is handed holds.
struct Narrated<S> {
    inner: S,
    started: Instant,
    batches: usize,
}

impl<S: Sink> Sink for Narrated<S> {
    fn encoding(&self) -> Encoding {
        self.inner.encoding()
    }

    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        self.batches += 1;
        let why = if events.len() == BATCH_SIZE {
            "full"
        } else {
            "partial: the flush interval passed"
        };
        eprintln!(
            "[{:>4} ms] batch {}: {} events ({why})",
            self.started.elapsed().as_millis(),
            self.batches,
            events.len()
        );
        self.inner.send(events)
    }

    fn flush(&mut self) -> Result<(), SendError> {
        self.inner.flush()
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let sink = Narrated {
        inner: WriterSink::stdout(),
        started: Instant::now(),
        batches: 0,
    };
    let emitter = Emitter::builder("/agents/batcher")
        .agent_id("batcher")
        .sink(sink)
        .batch_size(BATCH_SIZE)
        .flush_interval(FLUSH_INTERVAL)
        .build()?;

    eprintln!(
        "batch size {BATCH_SIZE}, flush interval {} ms: emitting {EVENTS} events",
        FLUSH_INTERVAL.as_millis()
    );
    for i in 0..EVENTS {
        let arguments = format!(r#"{{"iteration":{i}}}"#);
        emitter.emit_ossa(&ossa::ToolCalled {
            tool: "search",
            call_id: None,
            arguments: Some(RawJson::new(&arguments)?),
        })?;
    }

    // No `flush()` here: the worker sends the last, partial batch by itself
    // once the flush interval has passed. Wait for it, watching the metrics.
    let deadline = Instant::now() + FLUSH_INTERVAL * 20;
    while emitter.metrics().delivered < EVENTS as u64 {
        if Instant::now() >= deadline {
            return Err(format!("not delivered in time: {:?}", emitter.metrics()).into());
        }
        thread::sleep(Duration::from_millis(10));
    }

    let m = emitter.metrics();
    eprintln!(
        "metrics: emitted {}, delivered {}, batches {}, failed {}, dropped {}",
        m.emitted, m.delivered, m.batches, m.failed, m.dropped
    );
    emitter.shutdown()?;
    Ok(())
}
