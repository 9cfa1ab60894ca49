//! `emit` takes its collector URL and headers from the environment
//! (`OSSA_COLLECTOR_URL`, `OSSA_HTTP_HEADERS`) or a header file, so a token
//! need not be on the command line; the variables apply only to the sink in
//! use. Checked against a real socket that records what arrives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// A collector on loopback that answers 202 to everything and keeps each
/// request head (lower-cased).
fn collector() -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", l.local_addr().unwrap());
    let heads: Arc<Mutex<Vec<String>>> = Arc::default();
    let h2 = heads.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            let h3 = h2.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line.to_ascii_lowercase());
                    }
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    let mut body = vec![0u8; len];
                    r.read_exact(&mut body).unwrap();
                    h3.lock().unwrap().push(head);
                    w.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                        .unwrap();
                }
            });
        }
    });
    (url, heads)
}

/// Asserts `o` exited 0, showing its stderr otherwise.
#[track_caller]
fn assert_ok(o: &std::process::Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn emit(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ossa-events"));
    for v in [
        "OSSA_COLLECTOR_URL",
        "OSSA_HTTP_HEADERS",
        "OSSA_KAFKA_BROKERS",
        "OSSA_KAFKA_TOPIC",
    ] {
        c.env_remove(v);
    }
    c.args(["emit", "--demo", "--no-progress"])
        .args(args)
        .envs(env.iter().copied());
    c.output().unwrap()
}

#[test]
fn url_and_headers_come_from_the_environment() {
    let (url, heads) = collector();
    let o = emit(
        &["--sink", "http"],
        &[
            ("OSSA_COLLECTOR_URL", url.as_str()),
            (
                "OSSA_HTTP_HEADERS",
                "# the collector's token\nAuthorization: Bearer s3cret\n\n  #: not a header\nX-Team: agents\n",
            ),
        ],
    );
    assert_ok(&o);
    let heads = heads.lock().unwrap().clone();
    assert!(!heads.is_empty());
    for h in &heads {
        assert!(h.contains("authorization: bearer s3cret\r\n"), "{h}");
        assert!(h.contains("x-team: agents\r\n"), "{h}");
        // The # lines are comments, as in a --header-file.
        assert!(!h.contains('#'), "{h}");
    }
    // A command-line --url wins over the variable.
    let (url2, heads2) = collector();
    let o = emit(
        &["--sink", "http", "--url", &url2],
        &[("OSSA_COLLECTOR_URL", "http://127.0.0.1:9/not-this")],
    );
    assert_ok(&o);
    assert!(!heads2.lock().unwrap().is_empty());
}

#[test]
fn variables_for_another_sink_are_ignored() {
    let o = emit(
        &["--sink", "stdout"],
        &[
            ("OSSA_COLLECTOR_URL", "http://127.0.0.1:9/x"),
            ("OSSA_HTTP_HEADERS", "X-A: b"),
            ("OSSA_KAFKA_BROKERS", "x:1"),
        ],
    );
    assert_ok(&o);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 15);
}

/// A variable of a sink not in use is ignored also when its value is not
/// UTF-8 (a Latin-1 token in `OSSA_HTTP_HEADERS`): it made `--sink stdout`
/// fail with "OSSA_HTTP_HEADERS value is not valid UTF-8" (exit 2). The sink
/// that uses it still refuses it so, naming the variable.
#[test]
#[cfg(unix)]
fn variables_for_another_sink_are_ignored_even_when_not_utf8() {
    use std::os::unix::ffi::OsStrExt as _;
    let bad = std::ffi::OsStr::from_bytes(b"X-Token: caf\xe9");
    for var in [
        "OSSA_COLLECTOR_URL",
        "OSSA_HTTP_HEADERS",
        "OSSA_KAFKA_BROKERS",
        "OSSA_KAFKA_TOPIC",
    ] {
        let run = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_ossa-events"))
                .args(["emit", "--demo", "--no-progress"])
                .args(args)
                .env_remove("OSSA_COLLECTOR_URL")
                .env_remove("OSSA_HTTP_HEADERS")
                .env_remove("OSSA_KAFKA_BROKERS")
                .env_remove("OSSA_KAFKA_TOPIC")
                .env(var, bad)
                .output()
                .unwrap()
        };
        let o = run(&["--sink", "stdout"]);
        assert_ok(&o);
        assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 15);
        if var == "OSSA_HTTP_HEADERS" {
            let o = run(&["--sink", "http", "--url", "http://127.0.0.1:9/"]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{err}");
            assert!(
                err.contains("emit: OSSA_HTTP_HEADERS value is not valid UTF-8"),
                "{err}"
            );
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
}

/// The HTTP variables stand in for `--url` and `--header` of a sink that
/// posts; `--sink otlp --otlp-file` posts nothing, so they are ignored
/// there too (they made it fail with "needs --url or --otlp-file (one of
/// them)" or "--header ... go with --url").
#[test]
fn http_variables_are_ignored_with_an_otlp_file() {
    let dir = std::env::temp_dir().join(format!("ossa-otlpfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("spans.jsonl");
    for env in [
        [("OSSA_COLLECTOR_URL", "http://127.0.0.1:9/x")],
        [("OSSA_HTTP_HEADERS", "Authorization: Bearer s3cret")],
    ] {
        let o = emit(
            &["--sink", "otlp", "--otlp-file", file.to_str().unwrap()],
            &env,
        );
        assert_ok(&o);
        assert!(!std::fs::read(&file).unwrap().is_empty());
    }
    // Given on the command line, they still clash.
    let o = emit(
        &[
            "--sink",
            "otlp",
            "--otlp-file",
            file.to_str().unwrap(),
            "--url",
            "http://127.0.0.1:9/x",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A header file saved with a UTF-8 byte order mark (as editors on Windows
/// do) is read as its text: the mark is not part of the first header's
/// name (it was refused: invalid HTTP header name "\u{feff}Authorization").
#[test]
fn a_header_file_with_a_byte_order_mark_is_read() {
    let dir = std::env::temp_dir().join(format!("ossa-hdr-bom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("headers");
    std::fs::write(&file, "\u{feff}Authorization: Bearer bom\r\nX-Team: a\r\n").unwrap();
    let (url, heads) = collector();
    let o = emit(
        &[
            "--sink",
            "http",
            "--url",
            &url,
            "--header-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_ok(&o);
    let heads = heads.lock().unwrap().clone();
    assert!(!heads.is_empty());
    for h in &heads {
        assert!(h.contains("authorization: bearer bom\r\n"), "{h}");
        assert!(h.contains("x-team: a\r\n"), "{h}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_header_file_is_read_and_a_bad_line_is_named_not_shown() {
    let dir = std::env::temp_dir().join(format!("ossa-hdr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("headers");
    std::fs::write(
        &good,
        "# the collector's token\nAuthorization: Bearer from-file\n\nX-Team: a\n",
    )
    .unwrap();
    let (url, heads) = collector();
    let o = emit(
        &[
            "--sink",
            "http",
            "--url",
            &url,
            "--header-file",
            good.to_str().unwrap(),
        ],
        &[],
    );
    assert_ok(&o);
    let heads = heads.lock().unwrap().clone();
    assert!(
        heads
            .iter()
            .all(|h| h.contains("authorization: bearer from-file\r\n")),
        "{heads:?}"
    );

    let bad = dir.join("bad");
    std::fs::write(&bad, "Authorization: Bearer ok\nsecret-without-colon\n").unwrap();
    let o = emit(
        &[
            "--sink",
            "http",
            "--url",
            &url,
            "--header-file",
            bad.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains(&format!("{}:2", bad.display())), "{e}");
    assert!(
        !e.contains("secret-without-colon"),
        "the line is not echoed: {e}"
    );
    let o = emit(
        &[
            "--sink",
            "http",
            "--url",
            &url,
            "--header-file",
            "/nonexistent/h",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_names_the_variables() {
    let o = Command::new(env!("CARGO_BIN_EXE_ossa-events"))
        .args(["emit", "--help"])
        .output()
        .unwrap();
    let h = String::from_utf8_lossy(&o.stdout);
    for v in [
        "OSSA_COLLECTOR_URL",
        "OSSA_HTTP_HEADERS",
        "OSSA_KAFKA_BROKERS",
        "OSSA_KAFKA_TOPIC",
    ] {
        assert!(h.contains(&format!("[env: {v}]")), "{v}: {h}");
    }
    assert!(h.contains("--header-file FILE"), "{h}");
}
