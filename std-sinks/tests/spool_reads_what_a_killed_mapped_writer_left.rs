//! What a mapped spool (`SpoolConfig::mapped`) leaves when its process is
//! killed, made on purpose and read back by the next emitter, mapped or
//! not: the last segment at any reserved size with zeros after its last
//! record, a record cut anywhere with its magic (written last) still zero,
//! a `spare.N` file half made. Property: every whole record is delivered, in
//! order, once; nothing counts as corrupt; the spare files are gone; the
//! emitter starts every time (no panic on any of these files).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ossa_events::sink::{Encoded, Sink};
use ossa_events::spool::SpoolConfig;
use ossa_events::{Emitter, Error, EventBuilder, SendError};
use proptest::prelude::*;

mod spool_support;
use spool_support::{segment_files, wait_until_unlocked};

/// A collector that takes everything (`up`) or nothing.
#[derive(Clone)]
struct Collector {
    up: bool,
    got: Arc<Mutex<Vec<String>>>,
}

impl Sink for Collector {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        if !self.up {
            return Err(SendError::retryable(Error::Transport("down".into()), None));
        }
        let mut got = self.got.lock().unwrap();
        got.extend(events.iter().map(|e| e.id().to_owned()));
        Ok(())
    }
}

fn emitter(dir: &Path, sink: Collector, segment: u64, mapped: bool) -> Emitter {
    Emitter::builder("/agents/killed")
        .sink(sink)
        .spool(SpoolConfig::new(dir).segment_bytes(segment).mapped(mapped))
        .flush_interval(Duration::from_millis(2))
        .shutdown_timeout(Duration::from_millis(50))
        .build()
        .unwrap()
}

static CASE: AtomicU32 = AtomicU32::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn every_whole_record_arrives_once_in_order_and_nothing_is_corrupt(
        events in 1usize..120,
        segment in prop_oneof![Just(4096u64), Just(8192), Just(65536)],
        // How much of one more record the kill left, in 1/64ths of it.
        torn in 0usize..64,
        // The size the last segment was reserved at, in multiples of it.
        reserved in 1u64..4,
        spare in any::<bool>(),
        reader_mapped in any::<bool>(),
    ) {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "spool_killed_mapped_{}_{}",
            std::process::id(),
            CASE.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let down = Collector { up: false, got: Arc::default() };
        let em = emitter(&dir, down, segment, true);
        let ids: Vec<String> = (0..events).map(|i| format!("k-{i:04}")).collect();
        for id in &ids {
            em.emit(EventBuilder::new().ty("dev.example.tick").id(id)).unwrap();
        }
        // The collector is down: shutdown times out with the events kept on
        // disk, and returns while the worker may still be closing the spool.
        // Its lock is let go once it has.
        let _ = em.shutdown();
        drop(em);
        wait_until_unlocked(&dir);

        // The kill: the last segment as a mapped writer leaves it.
        let segs = segment_files(&dir);
        let last = segs.last().unwrap();
        let mut bytes = std::fs::read(last).unwrap();
        let records = bytes.clone();
        if !records.is_empty() {
            // Part of a copy of its first record, magic not yet written.
            let first_len = 20 + u32::from_le_bytes(records[4..8].try_into().unwrap()) as usize;
            let mut cut = records[..first_len * torn / 64].to_vec();
            let head = cut.len().min(4);
            cut[..head].fill(0);
            bytes.extend_from_slice(&cut);
        }
        let size = (bytes.len() as u64).max(segment) * reserved;
        bytes.resize(size as usize, 0);
        std::fs::write(last, &bytes).unwrap();
        if spare {
            std::fs::write(dir.join("spare.3"), vec![0u8; 4096]).unwrap();
        }

        let up = Collector { up: true, got: Arc::default() };
        let em = emitter(&dir, up.clone(), segment, reader_mapped);
        em.flush().unwrap();
        let m = em.metrics();
        em.shutdown().unwrap();
        drop(em);
        prop_assert_eq!(m.spool_corrupt, 0, "{:?}", m);
        prop_assert_eq!(m.replayed, events as u64, "{:?}", m);
        prop_assert_eq!(&*up.got.lock().unwrap(), &ids);
        let left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("spare"))
            .collect();
        prop_assert!(left.is_empty(), "{:?}", left);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
