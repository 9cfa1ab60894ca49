//! Fast UUID v4 event ids: a per-thread generator seeded once from the OS.
//!
//! An id straight from the OS costs a system call (~500 ns); drawing from a
//! seeded per-thread generator costs a few nanoseconds. Ids must be unique,
//! not secret, so a 128-bit xoshiro-style state seeded from the standard
//! library's per-process random keys is enough.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use ossa_events_core::{EventId, IdSource};

thread_local! {
    static STATE: Cell<[u64; 2]> = Cell::new(seed());
}

fn seed() -> [u64; 2] {
    let mut out = [0u64; 2];
    for (i, slot) in out.iter_mut().enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let tid = format!("{:?}", std::thread::current().id());
        h.write(tid.as_bytes());
        *slot = h.finish() | 1;
    }
    out
}

/// xoroshiro128++ step.
fn next_u64(s: &mut [u64; 2]) -> u64 {
    let (s0, mut s1) = (s[0], s[1]);
    let result = s0.wrapping_add(s1).rotate_left(17).wrapping_add(s0);
    s1 ^= s0;
    s[0] = s0.rotate_left(49) ^ s1 ^ (s1 << 21);
    s[1] = s1.rotate_left(28);
    result
}

/// A new random UUID v4 event id.
///
/// ```
/// let (a, b) = (ossa_events::new_id(), ossa_events::new_id());
/// assert_ne!(a, b);
/// assert_eq!(a.as_str().len(), 36);
/// ```
pub fn new_id() -> EventId {
    STATE.with(|c| {
        let mut s = c.get();
        let a = next_u64(&mut s);
        let b = next_u64(&mut s);
        c.set(s);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&a.to_le_bytes());
        bytes[8..].copy_from_slice(&b.to_le_bytes());
        EventId::from_random_bytes(bytes)
    })
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
