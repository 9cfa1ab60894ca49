//! `EmitterBuilder` options at their edges and in combination (found by
//! review): each option holds on every path an event takes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ossa_events::sink::{Encoded, Sink};
use ossa_events::spool::{SpoolConfig, SyncPolicy};
use ossa_events::{Emitter, Error, EventBuilder, RetryPolicy, SendError};

/// A collector that keeps the size of each batch it is sent, or refuses
/// everything (retryably) while down.
#[derive(Clone, Default)]
struct Batches {
    down: bool,
    sizes: Arc<Mutex<Vec<usize>>>,
}

impl Sink for Batches {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        if self.down {
            return Err(SendError::retryable(
                Error::Transport("collector down".into()),
                None,
            ));
        }
        self.sizes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(events.len());
        Ok(())
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ossa-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// An event of about 1 KiB.
fn kib_event(i: usize) -> EventBuilder<'static> {
    let data: &'static str =
        Box::leak(format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat(1000)).into_boxed_str());
    EventBuilder::new().ty("dev.example.big").data_json(data)
}

/// `queue_bytes` bounds the memory of the events waiting, also those a
/// spool hands back: events an earlier emitter left on disk were read back
/// a whole batch at a time (100 events by default, whatever their size),
/// so a spool full of large events took the emitter's memory far past its
/// byte limit and went out in batches no emitted event could make.
#[test]
fn events_read_back_from_the_spool_keep_to_the_byte_limit() {
    let dir = temp_dir("spool-bytes");
    let cfg = SpoolConfig::new(&dir).sync(SyncPolicy::Never);
    // The first emitter cannot deliver: its 40 events stay on disk.
    left_on_disk(&cfg, (0..40).map(kib_event));
    // The next one may hold about 4 of them in memory at once.
    let up = Batches::default();
    let second = Emitter::builder("/agents/a")
        .sink(up.clone())
        .queue_bytes(4 * 1024)
        .spool(cfg)
        .build()
        .unwrap();
    let report = second.flush_within(Duration::from_secs(30)).unwrap();
    let m = second.metrics();
    assert_eq!(m.replayed, 40, "{m:?}");
    assert_eq!(report.delivered, m.replayed, "{m:?}");
    let sizes = up
        .sizes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert!(
        sizes.iter().all(|&n| n <= 5),
        "batches of {sizes:?} events of 1 KiB under a 4 KiB queue"
    );
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `sequence` numbers go on across restarts from what the spool holds,
/// and an event may carry its own `sequence`, up to `u64::MAX`: found in
/// the spool, the next number to hand out overflowed (a panic in `emit`
/// in a debug build; in a release build the numbers went back to 0, so
/// they no longer sorted as the events were emitted). The counter stops
/// at the largest number instead.
#[test]
fn a_sequence_number_at_its_largest_found_in_the_spool_does_not_overflow() {
    const LARGEST: &str = "18446744073709551615";
    let dir = temp_dir("spool-seq-max");
    let cfg = SpoolConfig::new(&dir).sync(SyncPolicy::Never);
    left_on_disk(
        &cfg,
        [EventBuilder::new()
            .ty("dev.example.tick")
            .extension_str("sequence", LARGEST)],
    );
    let second = Emitter::builder("/agents/a")
        .sink(Batches::default())
        .sequence(true)
        .spool(cfg)
        .build()
        .unwrap();
    assert_eq!(second.next_sequence("/agents/a"), u64::MAX);
    second
        .emit(EventBuilder::new().ty("dev.example.tick"))
        .unwrap();
    second
        .emit(EventBuilder::new().ty("dev.example.tick"))
        .unwrap();
    assert_eq!(second.next_sequence("/agents/a"), u64::MAX);
    let report = second.flush_within(Duration::from_secs(30)).unwrap();
    assert_eq!(report.delivered, 3);
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `events` emitted by an emitter on the spool `cfg` whose sink is down
/// (no retry), then shut down at once: they stay on disk for the next one.
fn left_on_disk<'a>(cfg: &SpoolConfig, events: impl IntoIterator<Item = EventBuilder<'a>>) {
    let first = Emitter::builder("/agents/a")
        .sink(Batches {
            down: true,
            ..Batches::default()
        })
        .retry(RetryPolicy::none())
        .spool(cfg.clone())
        .build()
        .unwrap();
    for e in events {
        first.emit(e).unwrap();
    }
    let _ = first.shutdown_within(Duration::ZERO);
}
