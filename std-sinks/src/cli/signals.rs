//! SIGINT and SIGTERM for the commands that run until stopped (`emit`,
//! `consume`, `listen`): the first signal asks the command to stop cleanly
//! (stop reading, deliver or commit what is in hand, print the usual
//! summary, exit 128 + the signal's number: 130 for SIGINT, 143 for
//! SIGTERM); a second one exits at once, after `on_second` has printed the
//! counts known so far.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};

use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The exit code of a command stopped by `signal`: 128 + its number.
pub(crate) fn exit_code(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

/// The name of `signal`, for the summary.
pub(crate) fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// The first stop signal received, if any.
#[derive(Clone)]
pub(crate) struct Stop(Arc<AtomicI32>);

impl Stop {
    /// The signal that asked to stop, once one has.
    pub(crate) fn signal(&self) -> Option<i32> {
        Some(self.0.load(Ordering::SeqCst)).filter(|&s| s != 0)
    }
}

/// Watches SIGINT and SIGTERM on a thread of its own: the first is recorded
/// in the returned [`Stop`] and `on_first` runs (it wakes the command); on a
/// second, `on_second` runs (it prints what is known) and the process exits
/// with 128 + that signal's number. `None` when the handlers cannot be
/// installed (the command then runs as before: the default action ends it).
pub(crate) fn watch(
    on_first: impl Fn(i32) + Send + 'static,
    on_second: impl Fn(i32) + Send + 'static,
) -> Option<Stop> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).ok()?;
    let stop = Stop(Arc::new(AtomicI32::new(0)));
    let seen = stop.clone();
    std::thread::Builder::new()
        .name("ossa-events-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let first = seen
                    .0
                    .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                if first {
                    on_first(sig);
                    continue;
                }
                on_second(sig);
                std::process::exit(i32::from(exit_code(sig)));
            }
        })
        .ok()?;
    Some(stop)
}

/// A channel for a command's main loop: what its reader thread and the
/// signal watcher send.
pub(crate) fn channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    std::sync::mpsc::sync_channel(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(exit_code(SIGINT), 130);
        assert_eq!(exit_code(SIGTERM), 143);
        assert_eq!(name(SIGTERM), "SIGTERM");
    }
}
