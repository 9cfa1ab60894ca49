//! `emit` to stdout and `validate` write their lines in large pieces, not one
//! `write` per line: what they report is still what came out. `emit` stopped
//! by SIGTERM has printed exactly the events its summary counts delivered,
//! each a whole line; stdout closed early (piped into `head`) ends in a
//! report, not a panic; `validate` of a large input prints every event once,
//! in order, and keeps its line numbers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::bin;

fn line(i: usize) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"s-{i}","source":"/agents/t","type":"dev.ossa.tool.called","data":{{"n":{i},"pad":"{}"}}}}"#,
        "x".repeat(300)
    ) + "\n"
}

/// `ossa-events <args>` with stdin, stdout and stderr piped.
fn piped(args: &[&str]) -> Child {
    bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `validate` of `input` written to its stdin in pieces of `piece` bytes.
fn validate_in_pieces(input: String, piece: usize) -> std::process::Output {
    in_pieces("validate", input, piece)
}

/// `ossa-events <command>` given `input` on stdin in pieces of `piece` bytes.
fn in_pieces(command: &str, input: String, piece: usize) -> std::process::Output {
    let mut child = piped(&[command]);
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        for p in input.as_bytes().chunks(piece) {
            stdin.write_all(p).unwrap();
        }
    });
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    o
}

/// The `id` of each JSON line of `stdout`, in order.
fn ids_of(stdout: &[u8]) -> Vec<String> {
    std::str::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The line numbers `<command>: <input>:<line>: <what>` lines of `stderr`
/// name, in order (lines not of that shape are left out).
fn line_numbers(stderr: &str, prefix: &str) -> Vec<usize> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|l| {
            let at = l.split(": ").next().and_then(|w| w.rsplit_once(':'));
            at.unwrap_or_else(|| panic!("{l}")).1.parse().unwrap()
        })
        .collect()
}

/// `emit: read N, delivered N, …`: the number after `name`.
fn field(stderr: &str, name: &str) -> u64 {
    let l = stderr
        .lines()
        .find(|l| l.starts_with("emit: read "))
        .unwrap_or_else(|| panic!("no summary in {stderr:?}"));
    let at = l.find(&format!("{name} ")).unwrap() + name.len() + 1;
    l[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Checks `emit`'s summary: every event read was delivered, failed or
/// dropped. Returns (delivered, read).
fn every_event_accounted_for(stderr: &str) -> (u64, u64) {
    let read = field(stderr, "read");
    let (delivered, failed, dropped) = (
        field(stderr, "delivered"),
        field(stderr, "failed"),
        field(stderr, "dropped"),
    );
    assert_eq!(read, delivered + failed + dropped, "{stderr}");
    (delivered, read)
}

/// `yes EVENT | ossa-events COMMAND | head -1`: an input that does not
/// end, and stdout closed after its first line. Returns that line, the
/// exit status (`None`: still running 30 s later, then killed) and the
/// child (for its stderr).
fn head_1_of_an_endless_input(command: &str) -> (String, Option<std::process::ExitStatus>, Child) {
    let mut child = piped(&[command]);
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        let chunk: String = (0..1000).map(line).collect();
        while stdin.write_all(chunk.as_bytes()).is_ok() {}
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    drop(out);
    let status = common::exit_within(&mut child, Duration::from_secs(30));
    writer.join().unwrap();
    (first, status, child)
}

/// All a child wrote to its (piped) stderr, to its end.
fn stderr_of(child: &mut Child) -> String {
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn emit_stopped_by_sigterm_has_printed_what_it_counts_delivered() {
    let mut child = piped(&["emit"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut out = child.stdout.take().unwrap();
    // Told when the first output comes.
    let (printed_tx, printed) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        let mut v = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match out.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    v.extend_from_slice(&buf[..n]);
                    let _ = printed_tx.send(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("{e}"),
            }
        }
        v
    });
    let mut err = child.stderr.take().unwrap();
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    // A stream of events, stdin kept open: the signal comes mid-run.
    let writer = thread::spawn(move || {
        let mut i = 0;
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            let chunk: String = (i..i + 250).map(line).collect();
            if stdin.write_all(chunk.as_bytes()).is_err() {
                break;
            }
            i += 250;
            thread::sleep(Duration::from_millis(5));
        }
        i
    });
    // Once emit has printed: its signal handlers are set by then, and it
    // has delivered some. (After a fixed 800 ms, a loaded machine could
    // still be starting it, and SIGTERM killed it before its handlers.)
    printed
        .recv_timeout(Duration::from_secs(30))
        .expect("emit printed nothing within 30 s");
    thread::sleep(Duration::from_millis(200));
    signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    let stdout = reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    let _ = writer.join();
    assert_eq!(status.code(), Some(143), "{stderr}");
    let text = String::from_utf8(stdout).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "a torn last line");
    let lines: Vec<&str> = text.lines().collect();
    let delivered = field(&stderr, "delivered");
    assert!(delivered > 0, "{stderr}");
    assert_eq!(lines.len() as u64, delivered, "{stderr}");
    // Every line whole and in order, none twice.
    for (i, l) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["id"], format!("s-{i}"));
    }
    // Nothing vanished: what was read is delivered or counted not delivered.
    let read = field(&stderr, "read");
    let (failed, dropped) = (field(&stderr, "failed"), field(&stderr, "dropped"));
    assert_eq!(read, delivered + failed + dropped, "{stderr}");
}

#[test]
fn emit_into_a_closed_pipe_reports_and_does_not_panic() {
    let mut child = piped(&["emit"]);
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        let all: String = (0..20_000).map(line).collect();
        let _ = stdin.write_all(all.as_bytes());
    });
    // `| head -1`: one line, then the pipe is closed.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    drop(out);
    let stderr = stderr_of(&mut child);
    let status = child.wait().unwrap();
    writer.join().unwrap();
    assert!(first.contains(r#""id":"s-0""#), "{first}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(1), "{stderr}");
    // Every event is accounted for: delivered (before the pipe closed) or failed.
    let (delivered, read) = every_event_accounted_for(&stderr);
    assert!(delivered < read, "{stderr}");
}

/// Piped into `head -1` from an input that does not end (`tail -f`), `emit`
/// stops reading once its reader is gone, as `validate` does: it went on
/// reading and failing every event (5 M failed in 20 s) and never ended.
#[test]
fn emit_into_a_closed_pipe_ends_even_if_its_input_does_not() {
    let (_, status, mut child) = head_1_of_an_endless_input("emit");
    let stderr = stderr_of(&mut child);
    let status = status.unwrap_or_else(|| panic!("emit still running 30 s after its reader left"));
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Not everything read was delivered: exit 1, every event accounted for.
    assert_eq!(status.code(), Some(1), "{stderr}");
    every_event_accounted_for(&stderr);
}

#[test]
fn validate_prints_a_large_input_whole_and_keeps_line_numbers() {
    let n = 20_000;
    let mut input: String = (0..n).map(line).collect();
    // An invalid line far into the input (line n + 1), then one more event.
    input.push_str("{\"specversion\":\"1.0\"}\n");
    input.push_str(&line(n));
    // In small pieces, as a slow pipe delivers them.
    let o = validate_in_pieces(input, 7_001);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("<stdin>:{}:", n + 1)), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let ids = ids_of(&o.stdout);
    let want: Vec<String> = (0..=n).map(|i| format!("s-{i}")).collect();
    assert_eq!(ids, want);
}

#[test]
fn validate_into_a_closed_pipe_exits_0() {
    let input: String = (0..20_000).map(line).collect();
    let mut child = piped(&["validate"]);
    let mut stdin = child.stdin.take().unwrap();
    // validate stops reading once its reader is gone (as `cat` does): the
    // rest of the input may find its stdin closed.
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    drop(out);
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(first.contains(r#""id":"s-0""#));
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Every event was valid: closing stdout is not an invalid input.
    assert_eq!(o.status.code(), Some(0), "{stderr}");
}

/// Piped into `head -1` from an input that does not end (`tail -f`, a
/// producer's FIFO), `validate` ends once its reader is gone, as `cat`
/// does: it went on reading and checking forever, printing nowhere, and
/// the pipeline never ended.
#[test]
fn validate_ends_when_its_reader_is_gone_even_if_the_input_does_not() {
    let (first, status, _) = head_1_of_an_endless_input("validate");
    assert!(first.contains(r#""id":"s-0""#), "{first}");
    let status =
        status.unwrap_or_else(|| panic!("validate still running 30 s after its reader left"));
    // A reader that leaves is its choice, not a failure.
    assert!(status.success(), "{status:?}");
}

#[test]
fn validate_takes_lines_longer_than_its_reads_whole() {
    // Events of ~1 MiB each (four times validate's 256 KiB read), between
    // short ones, written in pieces: each is read in several reads and only
    // the fresh bytes are searched for its end; every line keeps its number.
    let big = |i: usize| {
        format!(
            r#"{{"specversion":"1.0","id":"big-{i}","source":"/agents/t","type":"t","data":{{"pad":"{}"}}}}"#,
            "y".repeat(1 << 20)
        ) + "\n"
    };
    let mut input = String::new();
    input.push_str(&line(0));
    input.push_str(&big(1));
    input.push_str(&line(2));
    input.push_str(&big(3));
    input.push_str("{\"specversion\":\"1.0\",\"id\":\"x\"}\n"); // line 5: no source
    input.push_str(&big(5));
    let o = validate_in_pieces(input, 100_003);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("<stdin>:5:"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let ids = ids_of(&o.stdout);
    assert_eq!(ids, ["s-0", "big-1", "s-2", "big-3", "big-5"]);
}

/// When stdout is a pipe, the CLI grows it to 1 MiB (or the system's
/// `pipe-max-size`, when lower), so the reader is woken once a megabyte, not
/// every 64 KiB (`validate` into a pipe: 0.45-0.61 s for 200 000 events
/// before, 0.30-0.33 s after).
#[cfg(all(target_os = "linux", feature = "cli"))]
#[test]
fn the_output_pipe_is_grown_to_a_megabyte() {
    let max: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    let mut child = bin()
        .arg("validate")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(line(1).as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    // The pipe outlives the process: this end still holds it.
    assert_eq!(
        rustix::pipe::fcntl_getpipe_size(&out).unwrap(),
        max.min(1 << 20)
    );
}

#[test]
fn validate_reports_bad_lines_in_input_order_from_all_its_threads() {
    // Chunks of a large input are checked on every core at once: what they
    // print still comes out in input order, on both streams, from a pipe
    // (64 KiB reads) and from a file (256 KiB reads).
    let n = 30_000;
    let bad = |i: usize| i % 997 == 3;
    let mut input = String::new();
    for i in 0..n {
        if bad(i) {
            input.push_str(&format!("{{\"specversion\":\"1.0\",\"id\":\"bad-{i}\"}}\n"));
        } else {
            input.push_str(&line(i).replacen(
                r#""data""#,
                &format!(r#""sequence":"{i}","data""#),
                1,
            ));
        }
    }
    let want_ids: Vec<String> = (0..n)
        .filter(|&i| !bad(i))
        .map(|i| format!("s-{i}"))
        .collect();
    let want_lines: Vec<usize> = (0..n).filter(|&i| bad(i)).map(|i| i + 1).collect();
    let file =
        std::env::temp_dir().join(format!("ossa-validate-order-{}.jsonl", std::process::id()));
    std::fs::write(&file, &input).unwrap();
    let from_file = bin()
        .args(["validate", "--sequence"])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let from_pipe = validate_in_pieces(input, 65_536);
    for (how, o) in [("file", from_file), ("pipe", from_pipe)] {
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{how}: {stderr}");
        assert_eq!(ids_of(&o.stdout), want_ids, "{how}");
        let lines = line_numbers(&stderr, "ossa-events: validate: ");
        assert_eq!(lines, want_lines, "{how}: {stderr}");
        if how == "file" {
            // The numbers seen by every thread are gathered in one report:
            // the bad lines are the missing ones.
            let missing = want_lines.len();
            assert!(
                stderr.contains(&format!(
                    "sequence /agents/t: 0..={}, {} numbered, {missing} missing, 0 duplicates",
                    n - 1,
                    want_ids.len()
                )),
                "{stderr}"
            );
        }
    }
}

#[test]
fn validate_prints_each_line_before_waiting_for_the_next() {
    // JSON Lines said: `auto` would wait for a second line to tell.
    let mut child = piped(&["validate", "--format", "jsonl"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    for i in 0..3 {
        stdin.write_all(line(i).as_bytes()).unwrap();
        stdin.flush().unwrap();
        // stdin stays open: the line must come out on its own.
        let mut got = String::new();
        out.read_line(&mut got).unwrap();
        assert!(got.contains(&format!(r#""id":"s-{i}""#)), "{got}");
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn emit_sends_events_and_reports_bad_lines_in_input_order_from_all_its_threads() {
    // Chunks are parsed on every core at once: the events still go out in
    // input order, and bad lines are named by their numbers (blank lines
    // counted), in order.
    let n = 30_000;
    let bad = |i: usize| i % 997 == 3;
    let blank = |i: usize| i % 1_499 == 7;
    let mut input = String::new();
    for i in 0..n {
        if bad(i) {
            input.push_str(&format!("{{\"specversion\":\"1.0\",\"id\":\"bad-{i}\"}}\n"));
        } else if blank(i) {
            input.push_str(" \r\n");
        } else {
            input.push_str(&line(i));
        }
    }
    let good = |i: &usize| !bad(*i) && !blank(*i);
    let want_ids: Vec<String> = (0..n).filter(good).map(|i| format!("s-{i}")).collect();
    let want_lines: Vec<usize> = (0..n).filter(|&i| bad(i)).map(|i| i + 1).collect();
    let o = in_pieces("emit", input, 65_536);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert_eq!(ids_of(&o.stdout), want_ids);
    assert_eq!(
        line_numbers(&stderr, "ossa-events: emit: "),
        want_lines,
        "{stderr}"
    );
    assert_eq!(
        field(&stderr, "read"),
        (want_ids.len() + want_lines.len()) as u64
    );
    assert_eq!(field(&stderr, "delivered"), want_ids.len() as u64);
    assert_eq!(
        field(&stderr, "invalid"),
        want_lines.len() as u64,
        "{stderr}"
    );
}

/// stdin that fails to read (a directory: EISDIR) is an I/O error: said,
/// and exit 1, not a run that read nothing and succeeded.
#[test]
fn emit_whose_stdin_fails_to_read_says_so_and_exits_1() {
    let dir = std::fs::File::open(std::env::temp_dir()).unwrap();
    let o = bin()
        .arg("emit")
        .stdin(Stdio::from(dir))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("<stdin>: ") && stderr.contains("the rest of this input is not read"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `ossa-events COMMAND > /dev/full` (ENOSPC on every write) with `lines`
/// events on stdin: its exit status (`None`: still running after 60 s,
/// then killed) and its stderr.
fn into_a_full_disk(command: &str, lines: usize) -> (Option<std::process::ExitStatus>, String) {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut child = bin()
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input: String = (0..lines).map(line).collect();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let status = common::exit_within(&mut child, Duration::from_secs(60));
    writer.join().unwrap();
    let stderr = stderr_of(&mut child);
    (status, stderr)
}

/// stdout that takes no more for another reason than a closed pipe (a
/// full disk: `/dev/full`) loses the lines: said, and exit 1.
#[test]
fn validate_into_a_full_disk_says_so_and_exits_1() {
    let (status, stderr) = into_a_full_disk("validate", 500);
    let status =
        status.unwrap_or_else(|| panic!("validate into /dev/full still running after 60 s"));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");
}

/// `emit` into a full disk fails each batch once, says why and exits 1,
/// every event counted failed. It backed off before each of ten tries a
/// batch: 200 events took 2.5 minutes.
#[test]
fn emit_into_a_full_disk_fails_each_batch_once_and_exits_1() {
    let (status, stderr) = into_a_full_disk("emit", 3000);
    let status = status.unwrap_or_else(|| panic!("emit into /dev/full still running after 60 s"));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    let (delivered, read) = every_event_accounted_for(&stderr);
    assert_eq!(
        (delivered, read, field(&stderr, "failed")),
        (0, 3000, 3000),
        "{stderr}"
    );
    assert_eq!(field(&stderr, "retried"), 0, "{stderr}");
}

/// Blank lines are skipped by `emit` and `validate` alike, and "blank" is
/// JSON's whitespace in both: a line of a form feed is an invalid line to
/// each (`emit` skipped it silently, `validate` refused it).
#[test]
fn emit_and_validate_agree_on_what_a_blank_line_is() {
    let input = format!("{} \t\r\n\n\u{c}\n{}", line(0), line(1));
    for command in ["emit", "validate"] {
        let o = in_pieces(command, input.clone(), usize::MAX);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{command}: {stderr}");
        assert_eq!(ids_of(&o.stdout), ["s-0", "s-1"], "{command}: {stderr}");
        // Lines 2 and 3 are blank; line 4 is the form feed.
        assert!(stderr.contains(":4:"), "{command}: line 4 named: {stderr}");
        assert!(
            !stderr.contains(":2:") && !stderr.contains(":3:"),
            "{command}: {stderr}"
        );
    }
}

/// A file that starts with a UTF-8 byte order mark (Windows editors write
/// one; RFC 8259 lets a reader ignore it) is read from its first event:
/// the BOM made line 1 invalid, and in `validate`'s auto mode the whole
/// file then one bad event.
#[test]
fn a_leading_byte_order_mark_is_skipped() {
    let input = format!("\u{feff}{}{}", line(0), line(1));
    for command in ["emit", "validate"] {
        let o = in_pieces(command, input.clone(), 1);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{command}: {stderr}");
        assert_eq!(ids_of(&o.stdout), ["s-0", "s-1"], "{command}: {stderr}");
    }
}

/// stderr or stdout whose reader has left before it is written (as with
/// `2>&1 | head -1`, or `--help | head -1`): the line is lost, and the exit
/// status is still the documented one, not the 101 of a panic ("failed
/// printing to stderr: Broken pipe").
#[test]
fn a_closed_stderr_or_stdout_leaves_the_documented_exit_status() {
    // A pipe whose reader is gone: a write gets EPIPE (SIGPIPE is ignored).
    let closed = || {
        let (r, w) = std::io::pipe().unwrap();
        drop(r);
        w
    };
    let valid: String = (0..3).map(line).collect();
    let bad = format!("garbage\n{valid}");
    let cases: [(&[&str], &str, bool, i32); 10] = [
        // (args, stdin, stderr closed (else stdout), exit status)
        (&["emit"], &valid, true, 0),
        (&["emit"], &bad, true, 1),
        (&["emit", "--bogus"], "", true, 2),
        (&["validate"], "", true, 1),
        (&["validate", "--sequence"], &valid, true, 0),
        (&["validate", "/"], "", true, 1),
        (&["--help"], "", false, 0),
        (&["emit", "--help"], "", false, 0),
        // An address this host does not have: `listen` says so and exits 1.
        (&["listen", "--http", "203.0.113.1:1"], "", true, 1),
        // clap_complete's writers panicked on a failed write.
        (&["completions", "bash"], "", false, 0),
    ];
    for (args, input, err_closed, want) in cases {
        let mut cmd = bin();
        cmd.args(args).stdin(Stdio::piped());
        if err_closed {
            cmd.stdout(Stdio::null()).stderr(closed());
        } else {
            cmd.stdout(closed()).stderr(Stdio::piped());
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(input.as_bytes());
        drop(stdin);
        let o = child.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(want),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// `demo | head -1` with the reader gone before the first write: EPIPE
/// (SIGPIPE is ignored) is the reader's choice, so exit 0 and nothing said,
/// as the help states. `demo` told it by the error's text, "Broken pipe".
#[test]
fn demo_into_a_closed_pipe_exits_0_and_says_nothing() {
    for _ in 0..3 {
        let (r, w) = std::io::pipe().unwrap();
        drop(r);
        let o = bin()
            .arg("demo")
            .stdin(Stdio::null())
            .stdout(w)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{stderr}");
        assert!(stderr.is_empty(), "{stderr}");
    }
}

/// An extension name is the input's text: one with an escape sequence or a
/// line break is reported with those characters escaped, as one line. They
/// went to stderr as they were: `\x1b[2J` cleared the operator's terminal,
/// and a `\n` in the name started a second line that the input wrote.
#[test]
fn a_control_character_in_an_attribute_name_is_reported_escaped() {
    let input = concat!(
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","\u001b[2J\nok":1}"#,
        "\n"
    );
    for command in ["emit", "validate"] {
        let o = in_pieces(command, input.to_string(), usize::MAX);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{command}: {stderr}");
        assert!(!stderr.contains('\u{1b}'), "{command}: {stderr:?}");
        let report: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("emit: "))
            .collect();
        assert_eq!(
            report,
            [format!(
                r"ossa-events: {command}: <stdin>:1: attribute `\u001b[2J\u000aok`: attribute names must be 1+ characters of a-z and 0-9"
            )],
            "{command}: {stderr:?}"
        );
    }
}

/// A line that is not well-formed JSON is named by line and column, by
/// `emit` as by `validate` (`emit` said the line and a byte offset only).
#[test]
fn emit_and_validate_name_the_line_and_column_of_a_json_error() {
    let input = format!("{}{{\"specversion\": \"1.0\" \"id\"}}\n", line(0));
    for command in ["emit", "validate"] {
        let o = in_pieces(command, input.clone(), usize::MAX);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "ossa-events: {command}: <stdin>:2:23: invalid JSON at byte 22: expected ','"
            )),
            "{command}: {stderr}"
        );
    }
}
