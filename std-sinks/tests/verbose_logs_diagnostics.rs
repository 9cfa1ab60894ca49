//! `ossa-events -v` (and RUST_LOG) print the library's diagnostics on
//! stderr; without them the tool prints none. Run as the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ossa-events"));
    c.env_remove("RUST_LOG");
    c
}

/// A loopback URL where nothing listens (bound, then closed).
fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/events")
}

fn emit_to_dead_collector(pre: &[&str], env: Option<(&str, &str)>) -> Output {
    let url = dead_url();
    let mut c = bin();
    c.args(pre).args([
        "emit",
        "--demo",
        "--sink",
        "http",
        "--url",
        &url,
        "--deadline",
        "3",
        "--no-progress",
    ]);
    if let Some((k, v)) = env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn dead_collector_diagnostics_appear_with_v_and_not_without() {
    let quiet = emit_to_dead_collector(&[], None);
    assert_eq!(quiet.status.code(), Some(1));
    let e = String::from_utf8_lossy(&quiet.stderr);
    assert!(!e.contains("circuit breaker"), "{e}");
    assert!(!e.contains(" WARN "), "{e}");

    let loud = emit_to_dead_collector(&["-v"], None);
    assert_eq!(loud.status.code(), Some(1));
    let e = String::from_utf8_lossy(&loud.stderr);
    assert!(e.contains("circuit breaker open"), "{e}");
    assert!(
        e.contains("events not delivered") || e.contains("giving up"),
        "{e}"
    );
    assert!(!e.contains("DEBUG"), "-v shows no debug lines: {e}");
    assert!(
        !e.contains("\x1b["),
        "no colour when stderr is not a terminal: {e}"
    );

    let louder = emit_to_dead_collector(&["-vv"], None);
    let e = String::from_utf8_lossy(&louder.stderr);
    assert!(e.contains("retrying"), "{e}");
}

#[test]
fn rust_log_sets_the_filter_and_a_bad_one_is_named() {
    let out = emit_to_dead_collector(&[], Some(("RUST_LOG", "ossa_events=debug")));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("retrying"), "{e}");
    let out = emit_to_dead_collector(&[], Some(("RUST_LOG", "ossa_events=loudest")));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("RUST_LOG ignored"), "{e}");
}

#[test]
fn verbose_goes_before_the_command_and_is_in_the_help() {
    let help = bin().arg("--help").output().unwrap();
    let h = String::from_utf8_lossy(&help.stdout);
    assert!(h.contains("-v, --verbose"), "{h}");
    let ok = bin().args(["--verbose", "demo"]).output().unwrap();
    assert_eq!(ok.status.code(), Some(0));
    let v = bin().args(["-vx", "demo"]).output().unwrap();
    assert_eq!(v.status.code(), Some(2), "-vx is no verbosity flag");
}
