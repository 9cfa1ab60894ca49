//! Chunks of input worked on by several threads at once and finished in
//! input order: `validate` and `emit` parse on every core, and still print
//! or send the events in the order they were read.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// How many threads [`in_order`] uses: one per core, at most 4 (two
/// already keep `emit`'s ordered part busy), at least 1.
pub(super) fn lanes() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

/// Runs `work` on each item `next` gives, on `lanes` threads (this one and
/// `lanes - 1` scoped helpers), until `next` gives `None`.
///
/// Items are numbered in the order `next` gave them (it is called by one
/// thread at a time). `work` gets its item's [`Waiter`]: whatever it does
/// before [`Waiter::turn`] runs in parallel with the other items; what it
/// does while it holds the [`Turn`] runs after every earlier item's turn,
/// and before every later one's. An item whose `work` returns without
/// taking its turn still waits for it, so the order never breaks.
///
/// When a helper cannot be started, the lanes already running do the work.
pub(super) fn in_order<T: Send>(
    lanes: usize,
    next: impl FnMut() -> Option<T> + Send,
    work: impl Fn(T, Waiter<'_>) + Sync,
) {
    let source = Mutex::new((0u64, next));
    let turns = Turns {
        next: Mutex::new(0),
        cv: Condvar::new(),
    };
    let lane = || {
        loop {
            let (n, item) = {
                let mut s = lock(&source);
                let (count, next) = &mut *s;
                let Some(item) = next() else { break };
                let n = *count;
                *count += 1;
                (n, item)
            };
            work(
                item,
                Waiter {
                    turns: &turns,
                    n,
                    taken: false,
                },
            );
        }
    };
    std::thread::scope(|s| {
        for i in 1..lanes.max(1) {
            let started = std::thread::Builder::new()
                .name(format!("ossa-events-lane-{i}"))
                .spawn_scoped(s, lane);
            if started.is_err() {
                break;
            }
        }
        lane();
    });
}

/// Whose turn it is: the number of the next item to finish.
struct Turns {
    next: Mutex<u64>,
    cv: Condvar,
}

/// An item's place in the order, handed to [`in_order`]'s `work`.
pub(super) struct Waiter<'t> {
    turns: &'t Turns,
    n: u64,
    taken: bool,
}

impl<'t> Waiter<'t> {
    /// Blocks until every earlier item has finished its turn, then holds
    /// this item's until the returned [`Turn`] is dropped.
    pub(super) fn turn(mut self) -> Turn<'t> {
        self.taken = true;
        self.wait()
    }

    fn wait(&self) -> Turn<'t> {
        let mut next = lock(&self.turns.next);
        while *next != self.n {
            next = self
                .turns
                .cv
                .wait(next)
                .unwrap_or_else(PoisonError::into_inner);
        }
        Turn {
            turns: self.turns,
            n: self.n,
        }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if !self.taken {
            // Its turn is taken and passed on at once: later items must not
            // overtake an earlier one, and must not wait for it forever.
            drop(self.wait());
        }
    }
}

/// An item's turn: held from [`Waiter::turn`] until dropped (also when
/// `work` panics), then passed to the next item.
pub(super) struct Turn<'t> {
    turns: &'t Turns,
    n: u64,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *lock(&self.turns.next) = self.n + 1;
        self.turns.cv.notify_all();
    }
}

/// Locks `m`, also after a thread panicked holding it (the data is
/// counters and order, still right).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn turns_follow_the_input_order_whatever_the_work_takes() {
        for lanes in [1, 2, 3, 4] {
            let mut items = 0..200u64;
            let done = Mutex::new(Vec::new());
            let parallel = AtomicUsize::new(0);
            let most = AtomicUsize::new(0);
            in_order(
                lanes,
                || items.next(),
                |i, w| {
                    let now = parallel.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Later items often finish their own work first.
                    std::thread::sleep(Duration::from_micros((200 - i) % 7 * 50));
                    parallel.fetch_sub(1, Ordering::SeqCst);
                    if i % 5 == 0 {
                        return; // no turn taken: it must still keep its place
                    }
                    let _t = w.turn();
                    done.lock().unwrap().push(i);
                },
            );
            let done = done.into_inner().unwrap();
            let want: Vec<u64> = (0..200).filter(|i| i % 5 != 0).collect();
            assert_eq!(done, want, "{lanes} lanes");
            if lanes > 1 {
                assert!(
                    most.load(Ordering::SeqCst) > 1,
                    "{lanes} lanes never worked in parallel"
                );
            } else {
                assert_eq!(most.load(Ordering::SeqCst), 1);
            }
        }
    }

    #[test]
    fn a_panicking_item_passes_its_turn_on() {
        let mut items = 0..20u64;
        let done = Mutex::new(Vec::new());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            in_order(
                2,
                || items.next(),
                |i, w| {
                    let _t = w.turn();
                    assert_ne!(i, 3, "item 3 fails");
                    done.lock().unwrap().push(i);
                },
            );
        }));
        assert!(r.is_err(), "the panic reaches the caller");
        let done = done.into_inner().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(done.get(..3), Some(&[0, 1, 2][..]));
        assert!(done.windows(2).all(|w| w[0] < w[1]), "{done:?}");
    }
}
