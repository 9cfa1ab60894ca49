//! A progress line on stderr for long runs (`emit`, `consume`): one line,
//! rewritten in place with a carriage return at most every
//! [`INTERVAL`], cleared before the final summary. Shown only when stderr is
//! a terminal, unless `--progress` or `--no-progress` says otherwise.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the line is redrawn (and how long a run is before it shows).
pub(crate) const INTERVAL: Duration = Duration::from_millis(250);
/// The span the rate is measured over.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// Carriage return and "erase to end of line".
const CLEAR_ANSI: &str = "\r\x1b[K";
/// The same without escape codes, for `TERM=dumb`: blank the line by hand.
const CLEAR_DUMB: &str =
    "\r                                                                               \r";

/// Whether the terminal says it understands no escape codes (`TERM=dumb`).
fn dumb_terminal() -> bool {
    std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

/// What clears the progress line on this terminal.
fn clear() -> &'static str {
    if dumb_terminal() {
        CLEAR_DUMB
    } else {
        CLEAR_ANSI
    }
}

/// `--progress` and `--no-progress`, flattened into `emit` and `consume`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct ProgressFlags {
    /// Show the progress line even when stderr is not a terminal
    #[arg(long, conflicts_with = "no_progress")]
    progress: bool,
    /// Never show the progress line [default: shown when stderr
    /// is a terminal and TERM is not dumb]
    #[arg(long, verbatim_doc_comment)]
    no_progress: bool,
}

impl ProgressFlags {
    /// Whether the flags (and stderr) ask for the line.
    pub(crate) fn wanted(self) -> bool {
        if self.no_progress {
            false
        } else {
            // A dumb terminal gets the line only when asked for (`--progress`).
            self.progress || std::io::stderr().is_terminal() && !dumb_terminal()
        }
    }
}

/// Whether a progress line is on screen now (other stderr output clears it first).
static SHOWN: AtomicBool = AtomicBool::new(false);

/// Prints `msg` as a line on stderr, first clearing the progress line if one
/// is shown (it is drawn again at the next tick).
pub(crate) fn note_line(msg: &str) {
    let mut err = std::io::stderr().lock();
    if SHOWN.swap(false, Ordering::Relaxed) {
        let _ = err.write_all(clear().as_bytes());
    }
    let _ = writeln!(err, "{msg}");
}

/// [`note_line`] with `format!` arguments.
macro_rules! note {
    ($($t:tt)*) => {
        $crate::cli::progress::note_line(&format!($($t)*))
    };
}
pub(crate) use note;

/// What a tick shows: the counters' text, and the count the rate is taken from.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The counters, e.g. `read 120000 · delivered 118000`.
    pub(crate) text: String,
    /// The count whose rate is shown, e.g. events delivered.
    pub(crate) count: u64,
}

/// A running progress line; [`Progress::finish`] (or drop) clears it.
#[derive(Debug)]
pub(crate) struct Progress {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts redrawing `label: <snapshot> · R ev/s · T s` on stderr every
    /// [`INTERVAL`] when `enabled`; does nothing otherwise.
    pub(crate) fn start(
        enabled: bool,
        label: &'static str,
        mut snapshot: impl FnMut() -> Snapshot + Send + 'static,
    ) -> Progress {
        if !enabled {
            return Progress {
                stop: None,
                thread: None,
            };
        }
        let (tx, rx) = mpsc::channel::<()>();
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name("ossa-events-progress".into())
            .spawn(move || {
                let mut samples: VecDeque<(Instant, u64)> = VecDeque::new();
                samples.push_back((started, 0));
                // Ends on the stop message, or when `Progress` is gone.
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(INTERVAL) {
                    let s = snapshot();
                    let now = Instant::now();
                    samples.push_back((now, s.count));
                    while samples.len() > 2
                        && samples
                            .get(1)
                            .is_some_and(|(t, _)| now.duration_since(*t) >= RATE_WINDOW)
                    {
                        samples.pop_front();
                    }
                    let rate = samples.front().map_or(0.0, |(t, c)| {
                        let secs = now.duration_since(*t).as_secs_f64();
                        if secs > 0.0 {
                            s.count.saturating_sub(*c) as f64 / secs
                        } else {
                            0.0
                        }
                    });
                    let line = format!(
                        "{label}: {} · {} ev/s · {:.1} s",
                        s.text,
                        group_thousands(rate.round() as u64),
                        now.duration_since(started).as_secs_f64()
                    );
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "{}{line}", clear());
                    let _ = err.flush();
                    SHOWN.store(true, Ordering::Relaxed);
                }
                let mut err = std::io::stderr().lock();
                if SHOWN.swap(false, Ordering::Relaxed) {
                    let _ = err.write_all(clear().as_bytes());
                    let _ = err.flush();
                }
            });
        match thread {
            Ok(t) => Progress {
                stop: Some(tx),
                thread: Some(t),
            },
            // No thread, no progress line: the run itself goes on.
            Err(_) => Progress {
                stop: None,
                thread: None,
            },
        }
    }

    /// Stops redrawing and clears the line, so the next stderr line starts clean.
    pub(crate) fn finish(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// `41230` as `41 230`.
pub(crate) fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let first = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    let mut out = String::from(&digits[..first.min(digits.len())]);
    let mut rest = &digits[first.min(digits.len())..];
    while !rest.is_empty() {
        let (group, tail) = rest.split_at(3.min(rest.len()));
        out.push(' ');
        out.push_str(group);
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        for (n, s) in [
            (0, "0"),
            (999, "999"),
            (1000, "1 000"),
            (41_230, "41 230"),
            (1_234_567, "1 234 567"),
        ] {
            assert_eq!(group_thousands(n), s);
        }
    }

    #[test]
    fn disabled_progress_starts_no_thread() {
        let p = Progress::start(false, "t", || Snapshot {
            text: String::new(),
            count: 0,
        });
        assert!(p.thread.is_none());
        p.finish();
    }
}
