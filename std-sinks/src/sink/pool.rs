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
//! ([`recycle`]), in chunks of [`STASH`]; an emitting thread whose stash is
//! empty swaps it for a whole chunk ([`buffer_for`]). The pool's lock is only
//! ever held to move one chunk, never for a loop over buffers: an emitting
//! thread uses `try_lock` and allocates, as before, when the pool is busy;
//! the worker waits for it. (A first version moved buffers one by one under
//! the lock, both sides with `try_lock`: with 4 emitting threads the
//! emitting threads' refills failed 72 000-109 000 times in a round of
//! 200 000 events, 65 % of events were allocated anew while the full pool
//! let the worker free as many, and those cross-thread frees fought the
//! emitting threads' `malloc` for glibc's arena locks: 16 000 futex waits
//! and wakes on the emitting threads, the 4-thread p99.)
//!
//! Bounded: the pool holds at most [`POOL_BYTES`] of capacity for the whole
//! process; each thread that has emitted keeps at most [`STASH`] buffers of
//! at most [`MAX_BUF`] (4 KiB), and gives them back to the pool when it
//! ends; a buffer is reused only for an event that fills at least half of
//! it, so a queued event holds at most twice its size in memory (what
//! `Encoded::size`, and so the queue's byte limit, counts; a spool counts
//! the bytes written).

use std::cell::RefCell;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::Encoded;

/// Capacity the shared pool keeps at most (all emitters of the process).
pub(crate) const POOL_BYTES: usize = 1 << 20;
/// Buffers larger than this are not kept (an OSSA event is well under it).
const MAX_BUF: usize = 4 * 1024;
/// Buffers in a chunk: what a thread takes from the pool at once, and keeps
/// at most.
const STASH: usize = 32;
/// Emptied chunk vectors the pool keeps for the worker to fill again.
const EMPTIES: usize = 64;

/// A handful of buffers handed over whole: the pool's lock is held to move
/// one `Vec`, never for a loop over buffers.
type Chunk = Vec<Vec<u8>>;

/// Chunks of buffers waiting to be reused, their total capacity, and the
/// vectors of chunks the emitting threads emptied.
struct Pool {
    chunks: Vec<(Chunk, usize)>,
    bytes: usize,
    empties: Vec<Chunk>,
}

impl Pool {
    const fn new() -> Pool {
        Pool {
            chunks: Vec::new(),
            bytes: 0,
            empties: Vec::new(),
        }
    }
}

/// The process's pool.
static POOL: Mutex<Pool> = Mutex::new(Pool::new());

/// `pool`, after a panic elsewhere too: every change to it is made whole
/// under the lock.
fn lock(pool: &Mutex<Pool>) -> MutexGuard<'_, Pool> {
    pool.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A thread's share of a pool (the one `.1` gives: the process's, but in a
/// test): one chunk, given back when the thread ends. (A function, not a
/// reference: a `const` thread-local may not refer to a `static` with
/// interior mutability before Rust 1.91, and the crates build on 1.89.)
struct Stash(Chunk, fn() -> &'static Mutex<Pool>);

impl Drop for Stash {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = give((self.1)(), std::mem::take(&mut self.0));
        }
    }
}

/// [`POOL`], for a [`Stash`].
fn process_pool() -> &'static Mutex<Pool> {
    &POOL
}

thread_local! {
    /// This thread's share of the pool.
    static STASH_BUFS: RefCell<Stash> = const { RefCell::new(Stash(Vec::new(), process_pool)) };
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
            let stash = &mut stash.0;
            if stash.is_empty() {
                refill(&POOL, stash);
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

/// Swaps the (empty) `stash` for a chunk of the pool, unless another thread
/// is at the pool: the emitting thread never waits for it.
fn refill(pool: &Mutex<Pool>, stash: &mut Chunk) {
    let Ok(mut pool) = pool.try_lock() else {
        return;
    };
    let Some((chunk, bytes)) = pool.chunks.pop() else {
        return;
    };
    pool.bytes -= bytes;
    let emptied = std::mem::replace(stash, chunk);
    if pool.empties.len() < EMPTIES && emptied.capacity() >= STASH {
        pool.empties.push(emptied);
    }
}

/// Puts a chunk into the pool when it has room for it (else its buffers are
/// freed, after the lock is released); returns whether it did. The lock is
/// held to move the chunk only.
fn give(pool: &Mutex<Pool>, chunk: Chunk) -> bool {
    let bytes: usize = chunk.iter().map(Vec::capacity).sum();
    let mut pool = lock(pool);
    if pool.bytes + bytes <= POOL_BYTES {
        pool.bytes += bytes;
        pool.chunks.push((chunk, bytes));
        return true;
    }
    drop(pool);
    drop(chunk);
    false
}

/// Gives the buffers of `events` to the pool, in chunks of [`STASH`], while
/// it has room (the rest are freed). Run by the worker; it waits for the
/// pool's lock, which is only ever held to move a chunk.
pub(crate) fn recycle(events: &mut Vec<Encoded>) {
    recycle_into(&POOL, events.drain(..).map(Encoded::into_buffer));
}

/// [`recycle`] into `pool`.
fn recycle_into(pool: &Mutex<Pool>, buffers: impl Iterator<Item = Vec<u8>>) {
    let mut buffers = buffers
        .filter(|b| b.capacity() != 0 && b.capacity() <= MAX_BUF)
        .peekable();
    // An emptied chunk vector is taken only for buffers to put in it.
    while buffers.peek().is_some() {
        let mut chunk = {
            let mut pool = lock(pool);
            if pool.bytes >= POOL_BYTES {
                return;
            }
            pool.empties.pop().unwrap_or_default()
        };
        chunk.clear();
        chunk.reserve(STASH);
        chunk.extend(buffers.by_ref().take(STASH));
        if !give(pool, chunk) {
            return; // full: the rest are freed
        }
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
        STASH_BUFS.with(|s| s.borrow_mut().0 = vec![old]);
        let new = b"new bytes, longer than the old, 40 bytes";
        let buf = buffer_for(new);
        assert_eq!((buf.as_slice(), buf.capacity()), (&new[..], 64));
        // The one that fits is found behind one that does not.
        STASH_BUFS.with(|s| s.borrow_mut().0 = vec![buf, Vec::with_capacity(1000)]);
        let again = buffer_for(new);
        assert_eq!(again.capacity(), 64);
        // None fits a small event: it gets a buffer of its own size, and the
        // oldest stashed buffer goes.
        STASH_BUFS.with(|s| s.borrow_mut().0.insert(0, again));
        let small = buffer_for(b"small");
        assert_eq!((small.as_slice(), small.capacity()), (&b"small"[..], 5));
        STASH_BUFS.with(|s| {
            let caps: Vec<usize> = s.borrow().0.iter().map(Vec::capacity).collect();
            assert_eq!(caps, [1000]);
        });
        STASH_BUFS.with(|s| s.borrow_mut().0.clear());
    }

    /// The capacity of the buffers `p` holds, counted one by one.
    fn held(p: &Pool) -> usize {
        p.chunks
            .iter()
            .flat_map(|(c, _)| c)
            .map(Vec::capacity)
            .sum()
    }

    fn buffers(n: usize, capacity: usize) -> impl Iterator<Item = Vec<u8>> {
        (0..n).map(move |_| Vec::with_capacity(capacity))
    }

    #[test]
    fn buffers_go_round_in_chunks_without_allocating_a_chunk() {
        let pool = Mutex::new(Pool::new());
        // A batch of 100 goes in as chunks of 32, 32, 32 and 4; those too big
        // to keep, or with no capacity, are left out.
        recycle_into(
            &pool,
            buffers(100, 600)
                .chain(buffers(1, MAX_BUF + 1))
                .chain(buffers(1, 0)),
        );
        {
            let p = lock(&pool);
            let lens: Vec<usize> = p.chunks.iter().map(|(c, _)| c.len()).collect();
            assert_eq!(lens, [32, 32, 32, 4]);
            assert_eq!((p.bytes, held(&p)), (100 * 600, 100 * 600));
        }
        // A thread takes the newest chunk whole, and leaves its emptied
        // vector for the next recycle to fill.
        let mut stash: Chunk = Vec::with_capacity(STASH);
        let emptied = stash.as_ptr();
        refill(&pool, &mut stash);
        assert_eq!(stash.len(), 4);
        {
            let p = lock(&pool);
            assert_eq!(p.bytes, 96 * 600);
            assert_eq!(p.empties.len(), 1);
            assert_eq!(p.empties[0].as_ptr(), emptied);
        }
        recycle_into(&pool, buffers(32, 700));
        let p = lock(&pool);
        let (newest, bytes) = p.chunks.last().unwrap();
        assert_eq!(
            (newest.as_ptr(), newest.len(), *bytes),
            (emptied, 32, 32 * 700)
        );
        assert!(p.empties.is_empty());
    }

    #[test]
    fn the_pool_keeps_no_more_than_its_bound() {
        let pool = Mutex::new(Pool::new());
        let per = 4 * 1024;
        recycle_into(&pool, buffers(POOL_BYTES / per + 100, per));
        assert_eq!(lock(&pool).bytes, POOL_BYTES);
        // A thread's stash that comes back when it ends is refused too.
        assert!(!give(&pool, buffers(1, 64).collect()));
        let p = lock(&pool);
        assert_eq!((p.bytes, held(&p)), (POOL_BYTES, POOL_BYTES));
    }

    #[test]
    fn a_thread_gives_its_stash_back_when_it_ends() {
        // A pool of this test's own: the process's is shared with the other
        // tests of this binary (emitters among them), which could take the
        // buffers back out, or fill it so that they are refused.
        static MINE: Mutex<Pool> = Mutex::new(Pool::new());
        fn mine() -> &'static Mutex<Pool> {
            &MINE
        }
        thread_local! {
            static STASH: RefCell<Stash> = const { RefCell::new(Stash(Vec::new(), mine)) };
        }
        const ODD: usize = 4093;
        std::thread::spawn(|| STASH.with(|s| s.borrow_mut().0 = buffers(3, ODD).collect()))
            .join()
            .unwrap();
        let p = lock(&MINE);
        let back: Vec<usize> = p
            .chunks
            .iter()
            .flat_map(|(c, _)| c)
            .map(Vec::capacity)
            .collect();
        assert_eq!((back, p.bytes), (vec![ODD; 3], 3 * ODD));
    }
}
