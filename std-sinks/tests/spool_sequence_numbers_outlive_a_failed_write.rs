//! Review finding: `sequence` numbers of events whose spool write failed
//! (the event went to memory and was delivered) are not kept by the spool,
//! so the next emitter on the directory hands the same numbers out again:
//! two different delivered events with one `sequence` number of one source
//! (a "conflict" for `ossa-events validate --sequence`), where the README
//! says the numbers "go on across restarts".
//!
//! The disk failure is a file-size limit (`RLIMIT_FSIZE`), with `SIGXFSZ`
//! caught so that the write fails with `EFBIG` instead of ending the
//! process (as the README tells programs to do). One test in this binary:
//! the limit is the whole process's.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use ossa_events::sink::{Encoded, Sink};
use ossa_events::spool::{SpoolConfig, SyncPolicy};
use ossa_events::{EventBuilder, SendError};

mod spool_support;
use spool_support::{quick, stop};

/// Keeps each delivered event's (id, sequence).
#[derive(Clone, Default)]
struct Seqs(Arc<Mutex<Vec<(String, String)>>>);

impl Sink for Seqs {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        let mut got = self.0.lock().unwrap();
        for e in events {
            let v: serde_json::Value = serde_json::from_slice(e.json()).unwrap();
            got.push((
                e.id().to_owned(),
                v["sequence"].as_str().unwrap_or("none").to_owned(),
            ));
        }
        Ok(())
    }
}

fn set_fsize(limit: Option<u64>) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let max = getrlimit(Resource::Fsize).maximum;
    setrlimit(
        Resource::Fsize,
        Rlimit {
            current: limit,
            maximum: max,
        },
    )
    .unwrap();
}

#[test]
fn sequence_numbers_of_events_kept_in_memory_are_not_handed_out_again() {
    // A write past the limit fails (EFBIG) instead of killing the process.
    signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "spool_review_seq_failed_write_{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    let sink = Seqs::default();
    let build = |sink: Seqs| {
        quick("/agents/seq")
            .sequence(true)
            .sink(sink)
            .spool(SpoolConfig::new(&d).sync(SyncPolicy::Never))
            .build()
            .unwrap()
    };
    {
        let em = build(sink.clone());
        // The segment (and every other spool file) can grow to 2 KiB: the
        // first few events are written, the rest fail and stay in memory.
        set_fsize(Some(2048));
        for i in 0..12 {
            em.emit(
                EventBuilder::new()
                    .ty("dev.example.tick")
                    .id(&format!("a{i:02}")),
            )
            .unwrap();
        }
        em.flush().unwrap();
        let m = em.metrics();
        set_fsize(None);
        assert!(m.spool_errors > 0, "no spool write failed: {m:?}");
        assert_eq!(m.delivered, 12, "{m:?}");
        stop(em, &d);
    }
    {
        let em = build(sink.clone());
        em.emit(EventBuilder::new().ty("dev.example.tick").id("b00"))
            .unwrap();
        em.flush().unwrap();
        stop(em, &d);
    }
    let got = sink.0.lock().unwrap().clone();
    let _ = std::fs::remove_dir_all(&d);
    let mut by_seq = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (id, seq) in &got {
        by_seq.entry(seq.clone()).or_default().push(id.clone());
    }
    let conflicts: Vec<_> = by_seq.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        conflicts.is_empty(),
        "one sequence number, different events: {conflicts:?} (all: {got:?})"
    );
}
