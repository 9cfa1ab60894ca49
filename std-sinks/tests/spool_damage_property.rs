//! A property test of the spool against damage at random points: a spool
//! of events left by an emitter whose collector was down, then runs of
//! bytes overwritten (filled, zeroed or bit-flipped) at random places of
//! random segments, across record boundaries, lengths and headers.
//!
//! Then an emitter opens it with the collector up, at a small cap under
//! `WhenFull::Block`, and emits several times what the cap holds.
//! Invariants:
//! - every event whose record the damage did not touch is delivered once;
//!   one it touched is delivered at most once; nothing else is delivered;
//! - no new event is refused: what the damage lost does not hold back the
//!   deletion of delivered segments (a run of damage did, for good);
//! - the next emitter on the spool finds nothing to send and counts no
//!   damage again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ossa_events::spool::{SpoolConfig, WhenFull};
use ossa_events::{Emitter, EventBuilder, Metrics};
use proptest::prelude::*;

mod spool_support;
use spool_support::{Gate, quick, record_starts, segment_files, stop};

fn emitter(d: &Path, gate: &Gate, segment: u64, mapped: bool, cap: Option<u64>) -> Emitter {
    let mut spool = SpoolConfig::new(d).segment_bytes(segment).mapped(mapped);
    if let Some(cap) = cap {
        spool = spool
            .max_bytes(cap)
            .when_full(WhenFull::Block(Duration::from_millis(500)));
    }
    quick("/agents/damage")
        .sink(gate.clone())
        .spool(spool)
        .build()
        .unwrap()
}

fn emit_all(em: &Emitter, ids: &[String]) -> usize {
    ids.iter()
        .filter(|id| {
            em.emit(EventBuilder::new().ty("dev.example.tick").id(id))
                .is_err()
        })
        .count()
}

/// How a run of bytes is overwritten.
#[derive(Debug, Clone, Copy)]
enum Hurt {
    Fill(u8),
    Zero,
    Flip(u8),
}

/// A run of damage: in the segment at `segment` (a fraction of the number
/// of segments), from `at` (a fraction of its length), `len` bytes.
#[derive(Debug, Clone, Copy)]
struct Smear {
    segment: f64,
    at: f64,
    len: usize,
    hurt: Hurt,
}

fn smear() -> impl Strategy<Value = Smear> {
    (
        0.0f64..1.0,
        0.0f64..1.0,
        prop_oneof![1usize..24, 24usize..700],
        prop_oneof![
            any::<u8>().prop_map(Hurt::Fill),
            Just(Hurt::Zero),
            (1u8..=255).prop_map(Hurt::Flip),
        ],
    )
        .prop_map(|(segment, at, len, hurt)| Smear {
            segment,
            at,
            len,
            hurt,
        })
}

static CASE: AtomicU32 = AtomicU32::new(0);

/// Spools `n` events (ids o-0…), applies `smears`, then runs the rest of
/// the case. Returns what the collector got, the ids whose records the
/// damage changed, and the metrics of the emitter through the cap and of
/// the one after it.
fn run(
    n: usize,
    segment: u64,
    mapped: [bool; 3],
    smears: &[Smear],
) -> (HashMap<String, u32>, Vec<String>, Metrics, Metrics, usize) {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "spool_damage_{}_{}",
        std::process::id(),
        CASE.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    let old: Vec<String> = (0..n).map(|i| format!("o-{i}")).collect();
    let em = emitter(&d, &Gate::up(false), segment, mapped[0], None);
    assert_eq!(emit_all(&em, &old), 0);
    stop(em, &d);
    // The records of each segment, with their ids (appended in order).
    let segs = segment_files(&d);
    let mut next_id = 0usize;
    let mut layout = Vec::new();
    for s in &segs {
        let bytes = std::fs::read(s).unwrap();
        let recs: Vec<(std::ops::Range<usize>, String)> = record_starts(&bytes)
            .windows(2)
            .map(|w| {
                next_id += 1;
                (w[0]..w[1], old[next_id - 1].clone())
            })
            .collect();
        layout.push((s.clone(), bytes, recs));
    }
    assert_eq!(next_id, n, "records on disk");
    let mut touched = Vec::new();
    for sm in smears {
        let i = ((sm.segment * layout.len() as f64) as usize).min(layout.len() - 1);
        let bytes = &mut layout[i].1;
        let at = ((sm.at * bytes.len() as f64) as usize).min(bytes.len().saturating_sub(1));
        let end = (at + sm.len).min(bytes.len());
        for b in &mut bytes[at..end] {
            *b = match sm.hurt {
                Hurt::Fill(v) => v,
                Hurt::Zero => 0,
                Hurt::Flip(m) => *b ^ m,
            };
        }
    }
    for (path, bytes, recs) in &layout {
        let before = std::fs::read(path).unwrap();
        for (r, id) in recs {
            if before[r.clone()] != bytes[r.clone()] {
                touched.push(id.clone());
            }
        }
        std::fs::write(path, bytes).unwrap();
    }
    // Through a small cap, several times what it holds.
    let total: u64 = segs
        .iter()
        .map(|s| std::fs::metadata(s).unwrap().len())
        .sum();
    let cap = (total + 2 * segment).max(4 * segment);
    let up = Gate::up(true);
    let em = emitter(&d, &up, segment, mapped[1], Some(cap));
    let new: Vec<String> = (0..(cap / 40) as usize).map(|i| format!("n-{i}")).collect();
    // Stops at the first refused (each waits the `Block` limit).
    let refused = new
        .iter()
        .position(|id| {
            em.emit(EventBuilder::new().ty("dev.example.tick").id(id))
                .is_err()
        })
        .map_or(0, |at| new.len() - at);
    em.flush().unwrap();
    let through = em.metrics();
    stop(em, &d);
    let em = emitter(&d, &up, segment, mapped[2], None);
    em.flush().unwrap();
    let after = em.metrics();
    stop(em, &d);
    let _ = std::fs::remove_dir_all(&d);
    let mut got = HashMap::new();
    for id in up.got() {
        *got.entry(id).or_insert(0u32) += 1;
    }
    (got, touched, through, after, refused)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn damage_loses_only_what_it_touches_and_holds_nothing_back(
        n in 10usize..160,
        segment in prop_oneof![Just(2048u64), Just(4096u64), Just(8192u64)],
        mapped in any::<[bool; 3]>(),
        smears in proptest::collection::vec(smear(), 1..4),
    ) {
        let (got, touched, through, after, refused) = run(n, segment, mapped, &smears);
        prop_assert_eq!(refused, 0, "new events refused at the cap: {:?}", through);
        for i in 0..n {
            let id = format!("o-{i}");
            let times = got.get(&id).copied().unwrap_or(0);
            if touched.contains(&id) {
                prop_assert!(times <= 1, "{} (damaged) delivered {} times", id, times);
            } else {
                prop_assert_eq!(times, 1, "{} (intact) delivered {} times", id, times);
            }
        }
        let new_ones = got.keys().filter(|k| k.starts_with("n-")).count() as u64;
        prop_assert_eq!(new_ones, through.emitted, "{:?}", through);
        prop_assert!(got.values().all(|&t| t == 1), "delivered twice: {:?}", got);
        prop_assert!(got.keys().all(|k| k.starts_with("n-") || k.starts_with("o-")));
        prop_assert_eq!(
            (after.replayed, after.spool_corrupt),
            (0, 0),
            "found again by the next emitter: {:?}",
            after
        );
    }
}
