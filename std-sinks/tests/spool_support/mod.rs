//! What the spool test binaries share: a collector that is up or down,
//! waiting for a stopped emitter to let its spool go, and the layout of
//! segment files.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ossa_events::sink::{Encoded, Sink};
use ossa_events::{Emitter, EmitterBuilder, Error, RetryPolicy, SendError};

/// A collector that is up or down: while down every send fails, retryably.
#[derive(Clone, Default)]
pub(crate) struct Gate {
    pub(crate) up: Arc<AtomicBool>,
    pub(crate) got: Arc<Mutex<Vec<String>>>,
}

impl Sink for Gate {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(SendError::retryable(
                Error::Transport("collector down".into()),
                None,
            ));
        }
        let mut got = self.got.lock().unwrap();
        got.extend(events.iter().map(|e| e.id().to_owned()));
        Ok(())
    }
}

impl Gate {
    pub(crate) fn up(up: bool) -> Gate {
        let g = Gate::default();
        g.up.store(up, Ordering::SeqCst);
        g
    }
    pub(crate) fn got(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
}

/// Shuts `em` down (the tests' short limit), drops it, and waits until its
/// worker has closed the spool. A shutdown that reaches its limit returns
/// while the worker may still be closing (sync, ledger, lock); on a loaded
/// machine (CI runs the suites side by side) the next emitter then found
/// the spool locked, or its files still changing under the test.
pub(crate) fn stop(em: Emitter, d: &Path) {
    em.shutdown().unwrap_or_default();
    drop(em);
    wait_until_unlocked(d);
}

/// An emitter builder with the spool tests' short times: a 5 ms flush
/// interval, retries 5 to 20 ms apart, a 300 ms shutdown limit.
pub(crate) fn quick(source: &str) -> EmitterBuilder {
    Emitter::builder(source)
        .flush_interval(Duration::from_millis(5))
        .retry(
            RetryPolicy::default()
                .base(Duration::from_millis(5))
                .cap(Duration::from_millis(20)),
        )
        .shutdown_timeout(Duration::from_millis(300))
}

/// Waits (up to 30 s) until no emitter holds the spool in `d`: takes its
/// lock, as the next emitter will, and lets it go.
pub(crate) fn wait_until_unlocked(d: &Path) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(d.join("lock"))
        .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match f.try_lock() {
            Ok(()) => {
                f.unlock().unwrap();
                return;
            }
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("the spool in {} stayed locked: {e:?}", d.display()),
        }
    }
}

/// The spool's segment files, in order.
pub(crate) fn segment_files(d: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    segs
}

/// Where each record of a segment file's bytes begins, and its end last
/// (by the lengths in the records' headers).
pub(crate) fn record_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0usize];
    while let Some(&at) = starts.last()
        && at + 20 <= bytes.len()
    {
        let n = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        starts.push(at + 20 + n);
    }
    starts
}
