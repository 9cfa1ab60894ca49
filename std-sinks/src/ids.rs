//! Fast UUID v4 event ids, from `fastrand`'s per-thread generator (seeded
//! once per thread from the standard library's random keys).
//!
//! An id straight from the OS costs a system call (~500 ns); drawing from a
//! seeded per-thread generator costs a few nanoseconds. Ids must be unique,
//! not secret, which a well-seeded fast generator gives.

use ossa_events_core::{EventId, IdSource};

/// A new random UUID v4 event id.
///
/// ```
/// let (a, b) = (ossa_events::new_id(), ossa_events::new_id());
/// assert_ne!(a, b);
/// assert_eq!(a.as_str().len(), 36);
/// ```
pub fn new_id() -> EventId {
    EventId::from_random_bytes(fastrand::u128(..).to_le_bytes())
}

/// An [`IdSource`] drawing from [`new_id`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FastIds;

impl IdSource for FastIds {
    fn next_id(&mut self) -> EventId {
        new_id()
    }
}

/// Where an FNV-1a hash starts.
pub(crate) const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of `bytes`, going on from `h`: a cheap fingerprint (to know a
/// batch or an event again), not a defence against crafted input.
pub(crate) fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_v4_across_threads() {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..10_000).map(|_| new_id()).collect::<Vec<_>>()))
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for id in h.join().unwrap() {
                let u = uuid::Uuid::parse_str(id.as_str()).unwrap();
                assert_eq!(u.get_version_num(), 4);
                assert!(all.insert(id));
            }
        }
        assert_eq!(all.len(), 40_000);
    }
}
