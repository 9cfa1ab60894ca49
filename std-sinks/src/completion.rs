//! A runtime-agnostic future for work that blocks: the work runs on a
//! short-lived helper thread, which stores the result and wakes the task.
//! No executor is assumed (tokio, async-std, smol and a hand-written
//! `block_on` all poll it the same way).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::Error;

/// What the helper thread and the future share.
struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

/// The shared slot of a [`Completion`].
type Shared<T> = Arc<Mutex<Slot<T>>>;

/// The future of [`run_off_thread`] and [`pending`].
pub(crate) struct Completion<T> {
    slot: Shared<T>,
}

impl<T> Future for Completion<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                // The latest waker: a task may move between threads.
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T> Completion<T> {
    /// This future, holding `keep` until it resolves or is dropped (not for
    /// as long as the helper thread runs).
    pub(crate) fn keeping<K: Unpin>(self, keep: K) -> Keeping<T, K> {
        Keeping {
            done: self,
            keep: Some(keep),
        }
    }
}

/// A [`Completion`] that holds something (an emitter handle) for as long as
/// someone waits for it: a future given up on lets it go at once, although
/// its helper thread runs on.
pub(crate) struct Keeping<T, K> {
    done: Completion<T>,
    keep: Option<K>,
}

impl<T, K: Unpin> Future for Keeping<T, K> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let r = Pin::new(&mut self.done).poll(cx);
        if r.is_ready() {
            self.keep = None;
        }
        r
    }
}

/// What resolves a [`Completion`] made by [`pending`]: from any thread, once.
/// Dropped without [`resolve`](Self::resolve) (its holder panicked), it
/// resolves the future to [`Error::Transport`]: a future nobody will
/// resolve would never end.
pub(crate) struct Resolver<T> {
    slot: Option<Shared<Result<T, Error>>>,
}

impl<T> Resolver<T> {
    /// Gives the future its value and wakes its task.
    pub(crate) fn resolve(mut self, value: Result<T, Error>) {
        if let Some(slot) = self.slot.take() {
            set(&slot, value);
        }
    }
}

impl<T> Drop for Resolver<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            set(&slot, Err(Error::Transport("emitter call panicked".into())));
        }
    }
}

/// Stores `value` and wakes the task that polled last (outside the lock).
fn set<T>(slot: &Mutex<Slot<T>>, value: T) {
    let waker = {
        let mut s = slot.lock().unwrap_or_else(PoisonError::into_inner);
        s.value = Some(value);
        s.waker.take()
    };
    if let Some(w) = waker {
        w.wake();
    }
}

/// A future and what resolves it.
pub(crate) fn pending<T>() -> (Completion<Result<T, Error>>, Resolver<T>) {
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
    }));
    (
        Completion { slot: slot.clone() },
        Resolver { slot: Some(slot) },
    )
}

/// Runs `work` on a new thread named `name`; the future resolves to its
/// result. A thread that cannot be started resolves it to [`Error::Io`] at
/// once; a `work` that panics resolves it to [`Error::Transport`].
pub(crate) fn run_off_thread<T, F>(name: &str, work: F) -> Completion<Result<T, Error>>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
    }));
    let theirs = slot.clone();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .unwrap_or_else(|_| Err(Error::Transport("emitter call panicked".into())));
            set(&theirs, result);
        });
    if let Err(e) = spawned {
        set(&slot, Err(Error::Io(e)));
    }
    Completion { slot }
}
