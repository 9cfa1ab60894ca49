//! Fast UUID v4 event ids (and the random W3C trace and span ids of
//! `tracing` spans), from a `fastrand` generator per thread, seeded from the
//! operating system's random source (`getrandom`) when the thread first
//! makes one.
//!
//! An id straight from the OS costs a system call (~500 ns); drawing from a
//! seeded per-thread generator costs a few nanoseconds. Ids must be unique,
//! not secret, which a well-seeded fast generator gives. (`fastrand`'s own
//! thread generators are seeded from the monotonic clock and the thread id,
//! with no OS randomness: two processes whose threads started at the same
//! nanosecond made the same ids.)
//!
//! A generator's state is copied with its process: a child made by `fork()`
//! (without `exec`) and every VM or container restored from one snapshot
//! would draw the same ids as the original. Call [`reseed_ids`] there, on
//! each thread that makes ids.

use std::cell::RefCell;
use std::hash::BuildHasher;

use ossa_events_core::{EventId, IdSource};

thread_local! {
    /// This thread's generator.
    static RNG: RefCell<fastrand::Rng> = RefCell::new(fastrand::Rng::with_seed(os_seed()));
}

/// 64 bits from the OS. Should `getrandom` fail (no source at all), the
/// standard library's per-thread hash keys, themselves from the OS when it
/// has one, still differ between threads and processes.
fn os_seed() -> u64 {
    let mut seed = [0u8; 8];
    match getrandom::getrandom(&mut seed) {
        Ok(()) => u64::from_le_bytes(seed),
        Err(_) => std::collections::hash_map::RandomState::new().hash_one(std::process::id()),
    }
}

/// 128 random bits from this thread's generator.
pub(crate) fn random_u128() -> u128 {
    RNG.with_borrow_mut(|r| r.u128(..))
}

/// A random non-zero `u128` from this thread's generator.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn random_nonzero_u128() -> u128 {
    RNG.with_borrow_mut(|r| r.u128(1..))
}

/// A random non-zero `u64` from this thread's generator.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn random_nonzero_u64() -> u64 {
    RNG.with_borrow_mut(|r| r.u64(1..))
}

/// Seeds the calling thread's id generator anew from the operating system.
///
/// Ids (event ids, and the trace and span ids of `tracing` spans) come from
/// a generator per thread, seeded from the OS once. Its state is copied
/// with the process, so call this in a child process after `fork()`
/// without `exec` (on the thread that goes on), and after restoring a VM or
/// container snapshot (on every thread that makes ids); otherwise they make
/// the same ids as the original.
///
/// ```
/// let a = ossa_events::new_id();
/// ossa_events::reseed_ids();
/// assert_ne!(ossa_events::new_id(), a);
/// ```
pub fn reseed_ids() {
    let seed = os_seed();
    RNG.with_borrow_mut(|r| r.seed(seed));
}

/// A new random UUID v4 event id.
///
/// ```
/// let (a, b) = (ossa_events::new_id(), ossa_events::new_id());
/// assert_ne!(a, b);
/// assert_eq!(a.as_str().len(), 36);
/// ```
pub fn new_id() -> EventId {
    EventId::from_random_bytes(random_u128().to_le_bytes())
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

    /// A thread's generator starts from the OS, not from the clock and
    /// thread id: two generators seeded at once differ, and a reseed
    /// leaves the sequence it was on.
    #[test]
    fn seeds_come_from_the_os_and_a_reseed_starts_a_new_sequence() {
        let seeds: HashSet<u64> = (0..64).map(|_| os_seed()).collect();
        assert_eq!(seeds.len(), 64);
        let before = RNG.with_borrow(|r| r.clone());
        reseed_ids();
        let mut old = before;
        let (a, b) = (old.u128(..), random_u128());
        assert_ne!(a, b);
    }
}
