//! An agent whose events survive `kill -9`: every event goes through a disk
//! spool, so what one run could not deliver the next run sends first.
//!
//! ```sh
//! cargo run -p ossa-events --example spool_agent -- DIR URL FIRST COUNT [mapped]
//! ```
//!
//! Emits `COUNT` events with ids `agent-FIRST` … to the collector at `URL`
//! (batched HTTP), spooled in `DIR`, and prints `accepted ID` on stdout as
//! soon as `emit()` has returned `Ok` for it (the event is in the spool by
//! then). At the end it waits for delivery and prints `done` and the counts.
//! Events carry the `sequence` extension, numbered on across runs. The
//! spool's crash test kills it at random moments and checks that the
//! collector got every id it printed, with numbers 1 to N and no gap.
//! With `mapped` the spool writes through a memory map
//! (`SpoolConfig::mapped`); the test changes mode between runs.

use std::io::Write;
use std::time::Duration;

use ossa_events::sink::{HttpMode, HttpSink};
use ossa_events::spool::{SpoolConfig, SyncPolicy, WhenFull};
use ossa_events::{Emitter, EventBuilder, RetryPolicy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, url, first, count, mapped) = match args.as_slice() {
        [dir, url, first, count] => (dir, url, first, count, false),
        [dir, url, first, count, m] if m == "mapped" => (dir, url, first, count, true),
        _ => {
            eprintln!("usage: spool_agent DIR URL FIRST COUNT [mapped]");
            std::process::exit(2);
        }
    };
    let (first, count): (u64, u64) = (first.parse()?, count.parse()?);
    let emitter = Emitter::builder("/agents/spool-agent")
        .sink(
            HttpSink::builder(url.as_str())
                .mode(HttpMode::Batched)
                .timeout(Duration::from_secs(2))
                .build()?,
        )
        .spool(
            SpoolConfig::new(dir)
                .max_bytes(64 << 20)
                .segment_bytes(1 << 20)
                .sync(SyncPolicy::Every(Duration::from_millis(100)))
                .when_full(WhenFull::Block(Duration::from_secs(30)))
                .mapped(mapped),
        )
        // The spool keeps what the collector does not take: never give up.
        .retry(
            RetryPolicy::default()
                .max_attempts(u32::MAX)
                .cap(Duration::from_millis(200)),
        )
        .shutdown_timeout(Duration::from_secs(60))
        // Numbered 1, 2, … across every run on this spool: the collector
        // can tell a lost event (a gap) from a duplicate (a repeat).
        .sequence(true)
        .build()?;
    let mut out = std::io::stdout().lock();
    for i in first..first + count {
        let id = format!("agent-{i:07}");
        emitter.emit(EventBuilder::new().ty("dev.ossa.tool.called").id(&id))?;
        writeln!(out, "accepted {id}")?;
        out.flush()?;
        if i % 500 == 0 {
            // An agent's pace, not a benchmark's: the test's kills land mid-run.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    emitter.flush()?;
    emitter.shutdown()?;
    let m = emitter.metrics();
    writeln!(
        out,
        "done emitted {} replayed {} delivered {} failed {} dropped {}",
        m.emitted, m.replayed, m.delivered, m.failed, m.dropped
    )?;
    Ok(())
}
