//! `emit FILE...` reads each file in turn (`-` is stdin), as `validate` does:
//! the events go out in the order of the files and of their lines, a bad
//! line is named by its file and its line in that file, a file that cannot
//! be opened is said and the next one is read (exit 1), and each file's
//! last line and byte order mark stay its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::bin;

fn event(id: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"/agents/t","type":"dev.ossa.tool.called","data":{{"n":1}}}}"#
    )
}

/// A fresh directory for this test's files.
fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ossa-emit-files-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &Path, text: &[u8]) {
    std::fs::write(path, text).unwrap();
}

/// `ossa-events emit ARGS` to stdout, with `stdin` on its standard input.
fn emit(args: &[&str], cwd: &Path, stdin: &str) -> Output {
    let mut child = bin()
        .arg("emit")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The `id` of each line of `stdout`, in order.
fn ids(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn files_and_stdin_are_read_in_the_order_given_and_bad_lines_are_named_by_file() {
    let d = dir("order");
    write(
        &d.join("a.jsonl"),
        format!("{}\n{}\n", event("a1"), event("a2")).as_bytes(),
    );
    // Line 2 of b is no event; its last line has no newline.
    write(
        &d.join("b.jsonl"),
        format!("{}\n{{\"not\":\"an event\"}}\n{}", event("b1"), event("b3")).as_bytes(),
    );
    // c's first line would join b's last one if the files were read as one
    // stream; c starts with a byte order mark, which is its own.
    write(
        &d.join("c.jsonl"),
        format!("\u{feff}{}\n", event("c1")).as_bytes(),
    );
    let o = emit(
        &["a.jsonl", "-", "b.jsonl", "c.jsonl"],
        &d,
        &format!("{}\n", event("s1")),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(ids(&o), ["a1", "a2", "s1", "b1", "b3", "c1"], "{stderr}");
    assert!(
        stderr.contains("ossa-events: emit: b.jsonl:2: "),
        "{stderr}"
    );
    assert_eq!(stderr.matches("ossa-events: emit: ").count(), 1, "{stderr}");
    assert!(
        stderr.contains("emit: read 7, delivered 6, retried 0, failed 0, dropped 0, invalid 1"),
        "{stderr}"
    );
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_file_that_cannot_be_opened_is_said_and_the_next_is_read() {
    let d = dir("missing");
    write(&d.join("a.jsonl"), format!("{}\n", event("a1")).as_bytes());
    write(&d.join("b.jsonl"), format!("{}\n", event("b1")).as_bytes());
    let o = emit(&["a.jsonl", "missing.jsonl", "b.jsonl"], &d, "");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(ids(&o), ["a1", "b1"], "{stderr}");
    assert!(
        stderr.contains("ossa-events: emit: missing.jsonl: No such file or directory"),
        "{stderr}"
    );
    assert!(stderr.contains("not read"), "{stderr}");
    assert!(stderr.contains("emit: read 2, delivered 2,"), "{stderr}");
    // Every event went out, but an input was not read: not a success.
    assert_eq!(o.status.code(), Some(1), "{stderr}");

    // A directory opens, then fails to read: the same.
    let o = emit(&[".", "a.jsonl"], &d, "");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(ids(&o), ["a1"], "{stderr}");
    assert!(
        stderr.contains("ossa-events: emit: .: ")
            && stderr.contains("the rest of this input is not read"),
        "{stderr}"
    );
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn after_a_double_dash_an_argument_that_starts_with_a_dash_is_a_file() {
    let d = dir("dash");
    write(&d.join("-x.jsonl"), format!("{}\n", event("x1")).as_bytes());
    let o = emit(&["--", "-x.jsonl"], &d, "");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(ids(&o), ["x1"], "{stderr}");
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_file_given_twice_is_read_twice() {
    // The same file given twice is read twice: each of its events is sent
    // twice, as `cat f f | emit` would send them.
    let d = dir("twice");
    write(
        &d.join("a.jsonl"),
        format!("{}\n{}\n", event("a1"), event("a2")).as_bytes(),
    );
    let o = emit(&["a.jsonl", "a.jsonl"], &d, "");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(ids(&o), ["a1", "a2", "a1", "a2"], "{stderr}");
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let _ = std::fs::remove_dir_all(&d);
}
