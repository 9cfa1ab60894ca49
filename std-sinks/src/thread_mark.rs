//! A mark a thread sets while it works for one object (an emitter's
//! give-up, a drain of its put-off events), so that a call it makes from
//! inside that work (an `on_undelivered` callback, a sink) can tell it would
//! wait for itself.

use std::cell::Cell;
use std::thread::LocalKey;

/// The thread-local a mark lives in: the address of the object this thread
/// works for, or 0. Declared `const` with a `Cell<usize>` (nothing to drop),
/// it is reachable even from another thread-local's destructor.
pub(crate) type Slot = LocalKey<Cell<usize>>;

/// While alive, `slot` on this thread names the object given to
/// [`ThreadMark::enter`]; dropped (a panic included), it names again what
/// it named before, since the work may nest (a callback shutting another
/// emitter down).
pub(crate) struct ThreadMark {
    slot: &'static Slot,
    before: usize,
}

impl ThreadMark {
    /// Marks this thread as working for `of` until the mark is dropped.
    pub(crate) fn enter<T>(slot: &'static Slot, of: &T) -> ThreadMark {
        let before = slot.with(|c| c.replace(address(of)));
        ThreadMark { slot, before }
    }

    /// Whether this thread is, at this moment, working for `of`.
    pub(crate) fn is_here<T>(slot: &'static Slot, of: &T) -> bool {
        slot.with(Cell::get) == address(of)
    }
}

impl Drop for ThreadMark {
    fn drop(&mut self) {
        self.slot.with(|c| c.set(self.before));
    }
}

fn address<T>(of: &T) -> usize {
    std::ptr::from_ref(of) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static SLOT: Cell<usize> = const { Cell::new(0) };
    }

    #[test]
    fn a_mark_names_its_object_until_dropped_and_nests() {
        let (a, b) = (1u8, 2u8);
        assert!(!ThreadMark::is_here(&SLOT, &a));
        {
            let _outer = ThreadMark::enter(&SLOT, &a);
            assert!(ThreadMark::is_here(&SLOT, &a));
            {
                let _inner = ThreadMark::enter(&SLOT, &b);
                assert!(ThreadMark::is_here(&SLOT, &b));
                assert!(!ThreadMark::is_here(&SLOT, &a));
            }
            assert!(ThreadMark::is_here(&SLOT, &a));
            // Another thread does not see this one's mark.
            let a_at = address(&a);
            let seen = std::thread::spawn(move || SLOT.with(Cell::get) == a_at)
                .join()
                .unwrap();
            assert!(!seen);
        }
        assert!(!ThreadMark::is_here(&SLOT, &a));
    }

    #[test]
    fn a_mark_is_taken_off_when_its_work_panics() {
        let a = 1u8;
        let r = std::panic::catch_unwind(|| {
            let _m = ThreadMark::enter(&SLOT, &a);
            panic!("in the work");
        });
        assert!(r.is_err());
        assert!(!ThreadMark::is_here(&SLOT, &a));
    }
}
