//! A spool directory named by a relative path is the one that path named
//! when the emitter was built, whatever the process's working directory
//! becomes later (a daemon changes to `/` once it runs, a tool into the
//! directory it works on). The spool keeps writing segments, its ledger and
//! its confirmation logs there, so the next emitter on it finds every event.
//!
//! One test in its own binary: it changes the process's working directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod spool_support;

use std::path::Path;

use ossa_events::EventBuilder;
use ossa_events::spool::{SpoolConfig, SyncPolicy};

use crate::spool_support::{Gate, quick, stop};

#[test]
fn a_relative_spool_dir_stays_where_it_was_when_the_working_dir_changes() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("spool_relative_chdir_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (here, later) = (base.join("here"), base.join("later"));
    std::fs::create_dir_all(&here).unwrap();
    std::fs::create_dir_all(&later).unwrap();
    let spool = here.join("spool");
    let cfg = |d: &Path| {
        SpoolConfig::new(d)
            .segment_bytes(4096)
            .sync(SyncPolicy::Never)
    };
    let ids: Vec<String> = (0..60).map(|i| format!("e-{i:03}")).collect();
    let data = "x".repeat(200);

    // The collector is down: every event stays in the spool.
    std::env::set_current_dir(&here).unwrap();
    let em = quick("/agents/relative")
        .sink(Gate::up(false))
        .spool(cfg(Path::new("spool")))
        .build()
        .unwrap();
    std::env::set_current_dir(&later).unwrap();
    for id in &ids {
        em.emit(
            EventBuilder::new()
                .ty("dev.example.tick")
                .id(id)
                .data_text("text/plain", &data),
        )
        .unwrap();
    }
    let first = em.metrics();
    stop(em, &spool);

    // The next emitter, given the same directory by its full path.
    let gate = Gate::up(true);
    let em = quick("/agents/relative")
        .sink(gate.clone())
        .spool(cfg(&spool))
        .build()
        .unwrap();
    em.flush().unwrap();
    let second = em.metrics();
    stop(em, &spool);
    let strays = later.join("spool").exists();
    let _ = std::fs::remove_dir_all(&base);

    assert_eq!(gate.got(), ids, "first run {first:?}, second {second:?}");
    assert_eq!(first.spool_errors, 0, "{first:?}");
    assert!(
        !strays,
        "spool files written under the new working directory"
    );
}
