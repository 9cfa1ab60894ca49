//! `emit` and `consume` show a progress line on stderr when it is a terminal,
//! and never when it is a pipe (unless `--progress`).
//!
//! The terminal is a real pseudo-terminal: util-linux `script -qfec CMD
//! /dev/null` runs `CMD` with its stdin, stdout and stderr on a new pty and
//! copies what `CMD` writes there to its own stdout. `CMD` sends stdout to
//! /dev/null, so what comes back is exactly the command's stderr as a
//! terminal shows it (with `\n` turned into `\r\n` by the pty).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ossa-events");
/// Erase-line, the start of every redraw.
const REDRAW: &str = "\r\x1b[K";
/// Copies of the demo run in the input file.
const COPIES: usize = 1000;
/// Events in the input file.
const EVENTS: usize = 15 * COPIES;
/// Events [`emit_pipeline`] feeds before its pause: ten demo runs.
const FIRST: usize = 150;

/// A JSON Lines file of `EVENTS` events (the demo run, repeated).
fn input() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let demo = Command::new(BIN).arg("demo").output().unwrap();
        assert!(demo.status.success());
        assert_eq!(demo.stdout.split(|&b| b == b'\n').count(), 16);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cli_progress_input_{}.jsonl", std::process::id()));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for _ in 0..COPIES {
            f.write_all(&demo.stdout).unwrap();
        }
        f.flush().unwrap();
        path
    })
}

fn quote(p: &Path) -> String {
    let s = p.to_str().unwrap();
    assert!(!s.contains('\''), "{s}");
    format!("'{s}'")
}

/// A shell pipeline that feeds the input's first [`FIRST`] events to `emit
/// ARGS`, then after a second the whole input (so the run outlasts several
/// redraws however fast the machine), with stdout thrown away. The first
/// part is small, so that emit has it delivered well within the second even
/// on a loaded machine (the whole input first: at 3 500 ev/s under load,
/// its 15 000 events took longer than the pause).
fn emit_pipeline(args: &str) -> String {
    let input = quote(input());
    format!(
        "{{ head -n {FIRST} {input}; sleep 1; cat {input}; }} | {} emit {args} > /dev/null",
        quote(Path::new(BIN))
    )
}

fn script_available() -> bool {
    Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` with stderr on a pseudo-terminal: what it wrote there, its exit
/// code, and how long it took.
fn on_a_terminal(cmd: &str) -> (String, Option<i32>, Duration) {
    assert!(
        script_available(),
        "these tests need util-linux `script` (Debian: bsdutils)"
    );
    let start = Instant::now();
    let o = Command::new("script")
        .args(["-qfec", cmd, "/dev/null"])
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    (
        String::from_utf8(o.stdout).unwrap(),
        o.status.code(),
        start.elapsed(),
    )
}

/// Runs `cmd` with stderr on a pipe.
fn on_a_pipe(cmd: &str) -> Output {
    Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The progress redraws in `tty`, and what follows the last one.
fn redraws<'a>(tty: &'a str, label: &str) -> (Vec<&'a str>, &'a str) {
    let mut parts: Vec<&str> = tty.split(REDRAW).collect();
    let tail = parts.pop().unwrap_or("");
    let draws = parts
        .into_iter()
        .filter(|p| p.starts_with(&format!("{label}: ")) && p.contains(" ev/s · "))
        .collect();
    (draws, tail)
}

#[test]
fn emit_shows_a_progress_line_on_a_terminal() {
    let (tty, code, took) = on_a_terminal(&emit_pipeline(""));
    assert_eq!(code, Some(0), "{tty:?}");
    let (draws, tail) = redraws(&tty, "emit");
    // At least the second of sleep, at most one redraw per 250 ms.
    assert!(
        draws.len() >= 3,
        "{} redraws in {took:?}: {tty:?}",
        draws.len()
    );
    let most = (took.as_millis() / 250) as usize + 1;
    assert!(draws.len() <= most, "{} redraws in {took:?}", draws.len());
    for d in &draws {
        // e.g. "emit: read 15000 · delivered 15000 · 41 230 ev/s · 1.3 s"
        let fields: Vec<&str> = d.split(" · ").collect();
        assert_eq!(fields.len(), 4, "{d:?}");
        assert!(fields[0].starts_with("emit: read "), "{d:?}");
        assert!(fields[1].starts_with("delivered "), "{d:?}");
        assert!(fields[2].ends_with(" ev/s"), "{d:?}");
        assert!(fields[3].ends_with(" s") && !d.contains('\n'), "{d:?}");
    }
    // During the sleep, the first part was read and delivered.
    assert!(
        draws
            .iter()
            .any(|d| d.starts_with(&format!("emit: read {FIRST} · delivered {FIRST} "))),
        "{draws:?}"
    );
    // The line is cleared, and the summary is all that follows it.
    let n = FIRST + EVENTS;
    assert_eq!(
        tail,
        format!("emit: read {n}, delivered {n}, retried 0, failed 0, dropped 0, invalid 0\r\n")
    );
}

#[test]
fn emit_shows_no_progress_line_on_a_pipe() {
    let o = on_a_pipe(&emit_pipeline(""));
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(o.status.code(), Some(0), "{err}");
    let n = FIRST + EVENTS;
    assert_eq!(
        err,
        format!("emit: read {n}, delivered {n}, retried 0, failed 0, dropped 0, invalid 0\n")
    );
}

#[test]
fn progress_flags_override_the_terminal_check() {
    // --no-progress on a terminal: only the summary.
    let (tty, code, _) = on_a_terminal(&emit_pipeline("--no-progress"));
    assert_eq!(code, Some(0), "{tty:?}");
    assert!(!tty.contains(REDRAW) && !tty.contains("ev/s"), "{tty:?}");
    assert!(tty.starts_with("emit: read "), "{tty:?}");

    // --progress on a pipe: the line, then the summary on a clean line.
    let o = on_a_pipe(&emit_pipeline("--progress"));
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(o.status.code(), Some(0), "{err}");
    let (draws, tail) = redraws(&err, "emit");
    assert!(draws.len() >= 3, "{err:?}");
    assert!(
        tail.starts_with("emit: read ") && tail.lines().count() == 1,
        "{tail:?}"
    );
}

/// Invalid lines are reported on lines of their own, not after the progress text.
#[test]
fn reports_clear_the_progress_line_first() {
    let bad = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_progress_bad_{}.jsonl", std::process::id()));
    std::fs::write(&bad, "{\"not\": \"an event\"}\n").unwrap();
    let cmd = format!(
        "{{ cat {input}; sleep 0.6; cat {bad}; sleep 0.6; }} | {bin} emit > /dev/null",
        input = quote(input()),
        bad = quote(&bad),
        bin = quote(Path::new(BIN)),
    );
    let (tty, code, _) = on_a_terminal(&cmd);
    assert_eq!(code, Some(1), "{tty:?}");
    let report = format!("{REDRAW}ossa-events: emit: <stdin>:{}: ", EVENTS + 1);
    assert!(tty.contains(&report), "{tty:?}");
    let (draws, tail) = redraws(&tty, "emit");
    assert!(draws.len() >= 2, "{tty:?}");
    assert!(
        tail.starts_with(&format!("emit: read {}, ", EVENTS + 1)),
        "{tail:?}"
    );
    let _ = std::fs::remove_file(bad);
}

/// `consume` against a broker that is not there, with a group (so it polls
/// after the metadata wait) and `--timeout`: the line shows on a
/// terminal, not on a pipe. The topic was never read: exit 1.
#[cfg(feature = "kafka")]
#[test]
fn consume_shows_a_progress_line_on_a_terminal_only() {
    let cmd = format!(
        "{} consume --kafka 127.0.0.1:1 --topic t --group g --timeout 1.2 > /dev/null",
        quote(Path::new(BIN))
    );
    let (tty, code, _) = on_a_terminal(&cmd);
    assert_eq!(code, Some(1), "{tty:?}");
    let (draws, tail) = redraws(&tty, "consume");
    assert!(draws.len() >= 2, "{tty:?}");
    for d in &draws {
        assert!(
            d.starts_with("consume: printed 0 · invalid 0 · 0 ev/s · "),
            "{d:?}"
        );
    }
    // Broker errors may be reported after the last redraw; the summary ends it.
    assert!(
        tail.ends_with("\nconsume: printed 0, invalid 0\r\n")
            || tail == "consume: printed 0, invalid 0\r\n",
        "{tail:?}"
    );

    let o = on_a_pipe(&cmd);
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains('\r') && !err.contains("ev/s"), "{err:?}");
    assert!(err.ends_with("consume: printed 0, invalid 0\n"), "{err:?}");
}

#[test]
fn a_dumb_terminal_gets_no_line_unless_asked_and_then_no_escape_codes() {
    // TERM=dumb on a terminal: no progress line by default.
    let (tty, code, _) = on_a_terminal(&format!("export TERM=dumb; {}", emit_pipeline("")));
    assert_eq!(code, Some(0), "{tty:?}");
    assert!(!tty.contains(" ev/s · "), "{tty:?}");
    assert!(!tty.contains('\x1b'), "{tty:?}");
    // Asked for: the line, redrawn with a carriage return and blanks only.
    let (tty, code, _) = on_a_terminal(&format!(
        "export TERM=dumb; {}",
        emit_pipeline("--progress")
    ));
    assert_eq!(code, Some(0), "{tty:?}");
    assert!(tty.contains(" ev/s · "), "{tty:?}");
    assert!(
        !tty.contains('\x1b'),
        "no escape codes on a dumb terminal: {tty:?}"
    );
}
