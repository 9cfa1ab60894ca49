//! Buffers of sent events, handed back to the threads that encode the next
//! ones: in steady state `emit()` allocates nothing and frees nothing.
//!
//! Why: with a buffer allocated by the emitting thread and freed by the
//! worker after the send, glibc's allocator kept growing the emitting
//! thread's arena a page at a time (an `mprotect` syscall per 4 KiB,
//! about one `emit()` in 130 under `emit_tail`; strace counted 31 595 in
//! one run of the bench) and touching fresh pages: that was the 1-thread
//! `emit()` p99 of 12-15 µs (issue 16). A buffer that goes round instead
//! touches no new memory.
//!
//! The worker returns the buffers of a batch once no one else holds it
//! ([`recycle`]); an emitting thread takes a handful at a time into a
//! thread-local stash ([`buffer_for`]). Neither ever waits: both use
//! `try_lock`, and when the pool is busy the worker lets the buffers go and
//! the emitting thread allocates, as before. Bounded: the pool holds at most
//! [`POOL_BYTES`] of capacity for the whole process; each thread that has
//! emitted keeps at most [`STASH`] buffers of at most [`MAX_BUF`] (128 KiB)
//! until it ends; a buffer is reused only for an event that fills at least
//! half of it, so a queued event holds at most twice its size in memory
//! (what `Encoded::size`, and so the queue's byte limit, counts; a spool
//! counts the bytes written).

use std::cell::RefCell;
use std::sync::Mutex;

use super::Encoded;

/// Capacity the shared pool keeps at most (all emitters of the process).
pub(crate) const POOL_BYTES: usize = 1 << 20;
/// Buffers larger than this are not kept (an OSSA event is well under it).
const MAX_BUF: usize = 4 * 1024;
/// Buffers a thread takes from the pool at once, and keeps at most.
const STASH: usize = 32;

/// Buffers waiting to be reused, and their total capacity.
struct Pool {
    bufs: Vec<Vec<u8>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    bufs: Vec::new(),
    bytes: 0,
});

thread_local! {
    /// This thread's share of the pool.
    static STASH_BUFS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Whether a buffer of `capacity` bytes is reused for `len` bytes: it holds
/// them, and they fill at least half of it.
fn fits(capacity: usize, len: usize) -> bool {
    capacity >= len && capacity / 2 <= len
}

/// A buffer holding `bytes`: a recycled one when this thread has one that
/// fits, else a new one of exactly their size.
pub(crate) fn buffer_for(bytes: &[u8]) -> Vec<u8> {
    let reused = STASH_BUFS
        .try_with(|stash| {
            let mut stash = stash.try_borrow_mut().ok()?;
            if stash.is_empty() {
                refill(&mut stash);
            }
            // The most recently stashed buffer that fits. When none does,
            // the oldest goes, so that a stash of sizes this thread no
            // longer writes empties and is refilled.
            match stash.iter().rposition(|b| fits(b.capacity(), bytes.len())) {
                Some(i) => Some(stash.swap_remove(i)),
                None => {
                    if !stash.is_empty() {
                        drop(stash.remove(0));
                    }
                    None
                }
            }
        })
        .ok()
        .flatten();
    match reused {
        Some(mut buf) => {
            buf.clear();
            buf.extend_from_slice(bytes);
            buf
        }
        None => bytes.to_vec(),
    }
}

/// Moves up to [`STASH`] buffers from the pool into `stash`, unless another
/// thread is at the pool.
fn refill(stash: &mut Vec<Vec<u8>>) {
    let Ok(mut pool) = POOL.try_lock() else {
        return;
    };
    let take = pool.bufs.len().min(STASH);
    let at = pool.bufs.len() - take;
    let taken: usize = pool.bufs[at..].iter().map(Vec::capacity).sum();
    stash.extend(pool.bufs.drain(at..));
    pool.bytes -= taken;
}

/// Gives the buffers of `events` to the pool (those it has room for; the
/// rest are freed), unless another thread is at the pool.
pub(crate) fn recycle(events: Vec<Encoded>) {
    let Ok(mut pool) = POOL.try_lock() else {
        return;
    };
    for e in events {
        let buf = e.into_buffer();
        let cap = buf.capacity();
        if cap == 0 || cap > MAX_BUF || pool.bytes + cap > POOL_BYTES {
            continue;
        }
        pool.bytes += cap;
        pool.bufs.push(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_reused_only_when_the_event_fills_half_of_it() {
        assert!(fits(600, 600));
        assert!(fits(600, 300));
        assert!(!fits(600, 299));
        assert!(!fits(600, 601));
        // A recycled buffer comes back holding exactly the new bytes.
        let mut old = Vec::with_capacity(64);
        old.extend_from_slice(b"old bytes");
        STASH_BUFS.with(|s| *s.borrow_mut() = vec![old]);
        let new = b"new bytes, longer than the old, 40 bytes";
        let buf = buffer_for(new);
        assert_eq!((buf.as_slice(), buf.capacity()), (&new[..], 64));
        // The one that fits is found behind one that does not.
        STASH_BUFS.with(|s| *s.borrow_mut() = vec![buf, Vec::with_capacity(1000)]);
        let again = buffer_for(new);
        assert_eq!(again.capacity(), 64);
        // None fits a small event: it gets a buffer of its own size, and the
        // oldest stashed buffer goes.
        STASH_BUFS.with(|s| s.borrow_mut().insert(0, again));
        let small = buffer_for(b"small");
        assert_eq!((small.as_slice(), small.capacity()), (&b"small"[..], 5));
        STASH_BUFS.with(|s| {
            let caps: Vec<usize> = s.borrow().iter().map(Vec::capacity).collect();
            assert_eq!(caps, [1000]);
        });
        STASH_BUFS.with(|s| s.borrow_mut().clear());
    }
}
