//! A progress line on stderr for long runs (`emit`, `consume`), drawn by
//! indicatif: one line, redrawn in place every [`INTERVAL`], cleared before
//! the final summary. Shown only when stderr is a terminal and `TERM` is not
//! `dumb`, unless `--progress` or `--no-progress` says otherwise.
//!
//! ```text
//!  ticker thread, every INTERVAL        indicatif                      stderr
//!  snapshot() ─ text ──▶ counts ◀── the template's {counts} key
//!             └ count ─▶ ProgressBar::update ── one draw ──▶ StderrLine ─▶ "\r\x1b[K" + line
//!  note!(…) ───────────▶ ProgressBar::suspend: clear, print the report, redraw
//!  finish(): stop the ticker ─▶ finish_and_clear ───────────▶ StderrLine ─▶ "\r\x1b[K"
//! ```
//!
//! indicatif hides its bar when stderr is not a terminal; `--progress` must
//! draw on a pipe too, so the bar draws through [`StderrLine`], a small
//! [`indicatif::TermLike`] that writes to stderr and clears a line with
//! `\r\x1b[K` (or, on a dumb terminal, with blanks and no escape codes).

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};

/// How often the line is redrawn (and how long a run is before it shows).
pub(crate) const INTERVAL: Duration = Duration::from_millis(250);
/// The width a dumb terminal's line is blanked over (it has no "erase line").
const DUMB_WIDTH: usize = 79;
/// The width given to indicatif where there is none to ask (a pipe, a dumb
/// terminal): wide enough that no line of ours is taken as wrapped, which
/// would make indicatif move the cursor up.
const NO_WIDTH: u16 = 1024;

/// Whether the terminal says it understands no escape codes (`TERM=dumb`).
fn dumb_terminal() -> bool {
    std::env::var_os("TERM").is_some_and(|t| t == "dumb")
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

/// The progress bar being shown, if any: [`note_line`] prints around it.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// The bar shown now (a clone: the same bar).
fn shown() -> Option<ProgressBar> {
    SHOWN.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Prints `msg` as a line on stderr; a progress line being shown is cleared
/// first and drawn again after it. Every report and summary of `emit` and
/// `validate` goes through here: a stderr whose reader has left (`2>&1 |
/// head -1`) loses the line, where `eprintln!` would panic and the process
/// exit 101 instead of its documented status.
pub(crate) fn note_line(msg: &str) {
    let print = || {
        let _ = writeln!(std::io::stderr().lock(), "{msg}");
    };
    match shown() {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
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
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts redrawing `label: <snapshot> · R ev/s · T s` on stderr every
    /// [`INTERVAL`] when `enabled`; does nothing otherwise. R is indicatif's
    /// estimate of the count's rate, T the seconds since the start.
    pub(crate) fn start(
        enabled: bool,
        label: &'static str,
        mut snapshot: impl FnMut() -> Snapshot + Send + 'static,
    ) -> Progress {
        let off = Progress {
            stop: None,
            thread: None,
            bar: None,
        };
        if !enabled {
            return off;
        }
        // The counters' text, set by the ticker before each draw; a key of
        // the template reads it, so one `update` draws text and count at once
        // (`set_message` would draw a second time).
        let counts = Arc::new(Mutex::new(String::new()));
        let style = ProgressStyle::with_template(&format!(
            "{label}: {{counts}} · {{rate}} ev/s · {{secs}} s"
        ));
        let Ok(style) = style else {
            return off;
        };
        let text = counts.clone();
        let style = style
            .with_key(
                "counts",
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&text.lock().unwrap_or_else(PoisonError::into_inner));
                },
            )
            .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                // Saturating: NaN (no estimate yet) shows as 0.
                let _ = w.write_str(&group_thousands(s.per_sec().round() as u64));
            })
            .with_key("secs", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}", s.elapsed().as_secs_f64());
            });
        let bar = ProgressBar::with_draw_target(
            None,
            ProgressDrawTarget::term_like(Box::new(StderrLine::new())),
        )
        .with_style(style);
        let (tx, rx) = mpsc::channel::<()>();
        let ticker = bar.clone();
        let thread = std::thread::Builder::new()
            .name("ossa-events-progress".into())
            .spawn(move || {
                // Ends on the stop message, or when `Progress` is gone.
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(INTERVAL) {
                    let s = snapshot();
                    *counts.lock().unwrap_or_else(PoisonError::into_inner) = s.text;
                    ticker.update(|state| state.set_pos(s.count));
                }
            });
        match thread {
            Ok(t) => {
                *SHOWN.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
                Progress {
                    stop: Some(tx),
                    thread: Some(t),
                    bar: Some(bar),
                }
            }
            // No thread, no progress line: the run itself goes on.
            Err(_) => off,
        }
    }

    /// Stops redrawing and clears the line, so the next stderr line starts clean.
    pub(crate) fn finish(mut self) {
        self.stop_and_clear();
    }

    fn stop_and_clear(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(bar) = self.bar.take() {
            SHOWN.lock().unwrap_or_else(PoisonError::into_inner).take();
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_and_clear();
    }
}

/// Where indicatif draws the line: stderr, whether or not it is a terminal
/// (`--progress` on a pipe), with the line cleared by `\r\x1b[K`, or on a
/// dumb terminal by a carriage return and blanks (no escape codes at all).
#[derive(Debug)]
struct StderrLine {
    dumb: bool,
    width: u16,
}

impl StderrLine {
    fn new() -> StderrLine {
        let dumb = dumb_terminal();
        let term = std::io::stderr().is_terminal() && !dumb;
        StderrLine {
            dumb,
            // A terminal's real width, so that indicatif redraws a wrapped
            // line whole.
            width: if term {
                console::Term::stderr().size().1
            } else {
                NO_WIDTH
            },
        }
    }

    fn write(&self, s: &str) -> std::io::Result<()> {
        std::io::stderr().lock().write_all(s.as_bytes())
    }

    /// `ESC [ n X`, a cursor movement; nothing on a dumb terminal, or for 0.
    fn cursor(&self, n: usize, code: char) -> std::io::Result<()> {
        if self.dumb || n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}{code}"))
    }
}

impl TermLike for StderrLine {
    fn width(&self) -> u16 {
        self.width
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'D')
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        writeln!(std::io::stderr().lock(), "{s}")
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        // indicatif pads each line with blanks to the width, to overwrite
        // what was there: `clear_line` did that already, and on a pipe the
        // blanks would only be noise.
        if !s.is_empty() && s.bytes().all(|b| b == b' ') {
            return Ok(());
        }
        self.write(s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        if self.dumb {
            self.write(&format!("\r{:DUMB_WIDTH$}\r", ""))
        } else {
            self.write("\r\x1b[K")
        }
    }

    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().lock().flush()
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
