#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `ossa-events emit --sink otlp`: the demo run and a JSON Lines capture go
//! to a collector on loopback (`--url`) or into a file (`--otlp-file`) as
//! OTLP JSON that opentelemetry-proto reads; the summary and exit rules are
//! those of the other sinks, plus a line of span counts.
#![cfg(feature = "cli")]

mod common;

use std::io::{BufReader, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use common::{bin, dead_port, read_request, serve_loopback};

/// Each request's path and body, as the collector read them.
type Bodies = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

fn spans_in(body: &[u8]) -> usize {
    let req: ExportTraceServiceRequest = serde_json::from_slice(body).unwrap();
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

/// `emit --sink otlp <args> --otlp-file <file>` given `input` on stdin.
fn emit_to_otlp_file(args: &[&str], file: &std::path::Path, input: &[u8]) -> std::process::Output {
    let mut child = bin()
        .args(["emit", "--sink", "otlp"])
        .args(args)
        .arg("--otlp-file")
        .arg(file)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn emit_demo_to_an_otlp_collector() {
    let bodies: Bodies = Arc::default();
    let b2 = bodies.clone();
    let addr = serve_loopback(None, move |stream| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        while let Ok(Some(req)) = read_request(&mut r) {
            b2.lock().unwrap().push((req.path, req.body));
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let out = bin()
        .args(["emit", "--demo", "--sink", "otlp", "--url"])
        .arg(format!("http://{addr}"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("emit: read 15, delivered 15, retried 0, failed 0"),
        "{err}"
    );
    assert!(
        err.contains("emit: otlp: spans 7 (unfinished 0, evicted 0), span events 1, lost 0"),
        "{err}"
    );
    let bodies = bodies.lock().unwrap();
    assert!(bodies.iter().all(|(p, _)| p == "/v1/traces"));
    // Without --service-name, the sink's default names the service.
    let named = br#"{"key":"service.name","value":{"stringValue":"ossa-events"}}"#;
    assert!(
        bodies
            .iter()
            .all(|(_, b)| b.windows(named.len()).any(|w| w == named)),
        "service.name ossa-events in every request"
    );
    assert_eq!(bodies.iter().map(|(_, b)| spans_in(b)).sum::<usize>(), 7);
}

#[test]
fn emit_a_capture_into_an_otlp_file() {
    let dir = std::env::temp_dir().join(format!("ossa-otlp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("spans.jsonl");
    // A capture: the demo run as JSON Lines, its last event (the workflow's
    // end) cut off, so the workflow span goes out unfinished.
    let capture = bin().args(["emit", "--demo"]).output().unwrap();
    let text = String::from_utf8(capture.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 15);
    let out = emit_to_otlp_file(
        &["--service-name", "researcher"],
        &file,
        lines[..14].join("\n").as_bytes(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("emit: otlp: spans 7 (unfinished 1, evicted 0), span events 1, lost 0"),
        "{err}"
    );
    let written = std::fs::read_to_string(&file).unwrap();
    let total: usize = written.lines().map(|l| spans_in(l.as_bytes())).sum();
    assert_eq!(total, 7);
    assert!(written.contains(r#""key":"ossa.span.unfinished","value":{"stringValue":"shutdown: "#));
    // The resource names the service given, in every request.
    let named = r#"{"key":"service.name","value":{"stringValue":"researcher"}}"#;
    assert!(written.lines().all(|l| l.contains(named)), "{written}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn emit_otlp_unreachable_counts_the_lost_spans_and_fails() {
    let out = bin()
        .args([
            "emit",
            "--demo",
            "--sink",
            "otlp",
            "--deadline",
            "0.5",
            "--url",
        ])
        .arg(format!("http://127.0.0.1:{}", dead_port()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // Started events were held (delivered), ends failed; the spans they
    // opened could not be sent at the end: counted, not silently dropped.
    assert!(err.contains("emit: read 15, delivered 8,"), "{err}");
    assert!(err.contains("failed 7,"), "{err}");
    assert!(err.contains("lost 7"), "{err}");
}

#[test]
fn emit_otlp_argument_errors() {
    for (args, msg) in [
        (
            &["--sink", "otlp"][..],
            "--sink otlp needs --url or --otlp-file",
        ),
        (
            &["--sink", "otlp", "--url", "http://x", "--otlp-file", "f"],
            "--sink otlp needs --url or --otlp-file",
        ),
        (
            &["--sink", "http", "--url", "http://x", "--otlp-file", "f"],
            "--otlp-file goes with --sink otlp",
        ),
        (
            &["--sink", "otlp", "--otlp-file", "f", "--gzip"],
            "go with --url, not --otlp-file",
        ),
        // A file has no request timeout: the option was taken and did nothing.
        (
            &["--sink", "otlp", "--otlp-file", "f", "--timeout", "5"],
            "--timeout go with --url, not --otlp-file",
        ),
        (
            &["--sink", "otlp", "--url", "http://x", "--mode", "binary"],
            "--mode goes with --sink http or kafka",
        ),
        (
            &["--sink", "http", "--url", "http://x", "--service-name", "a"],
            "--service-name goes with --sink otlp",
        ),
        (
            &["--sink", "otlp", "--otlp-file", "f", "--service-name", " "],
            "--service-name must not be empty",
        ),
    ] {
        let out = bin().arg("emit").args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
}

/// A numeric `call_id` keys its span as the number it is: two tool calls
/// whose ids differ in the 17th digit are two calls (the end of the other
/// one stays unmatched), not one span. serde_json's default float reading
/// took `970.8819781538285` for `970.8819781538284` and paired them; the
/// `otlp` feature turns on `float_roundtrip` (a dev-dependency turns it on
/// in test builds too: the release binary is where it showed).
#[test]
fn numeric_call_ids_that_differ_in_the_17th_digit_are_two_calls() {
    let dir = std::env::temp_dir().join(format!("ossa-otlp-float-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("spans.jsonl");
    let ev = |id: &str, ty: &str, sec: u32, call: &str| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"/s","type":"dev.ossa.tool.{ty}","time":"2026-01-01T00:00:0{sec}Z","ossatraceid":"4bf92f3577b34da6a3ce929d0e0e4736","ossaspanid":"00f067aa0ba902b7","data":{{"tool":"calc","call_id":{call}}}}}"#
        )
    };
    let input = format!(
        "{}\n{}\n",
        ev("c1", "called", 1, "970.8819781538285"),
        ev("c2", "completed", 2, "970.8819781538284")
    );
    let out = emit_to_otlp_file(&[], &file, input.as_bytes());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("emit: otlp: spans 2 (unfinished 1, evicted 0)"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
