//! `ossa-events emit` → `ossa-events listen`, both run as the real binary
//! over real loopback sockets.
//!
//! Lives in `std-sinks/tests/` (not the separate `tests/` crate) because only
//! an integration test of the package that owns the binary gets
//! `CARGO_BIN_EXE_ossa-events`, which cargo builds before the test runs.
//!
//! * the demo run in each content mode: exit 0, `delivered 15`, and `listen`
//!   printed the same 15 events the demo makes (types, data, extensions and
//!   span structure; ids and times are new each run);
//! * 2 000 generated JSON Lines events through batched mode, and a varied set
//!   through every mode: each printed by `listen` exactly once, unchanged;
//! * an invalid input line: reported with its line number, counted invalid,
//!   not sent, exit 1;
//! * a request `listen` refuses (413 over `--max-body`): counted failed, exit 1;
//! * invalid raw requests to `listen`: 400 with the reason, nothing printed.
//!
//! Every wait has a time limit; `listen` is killed when its guard drops.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{Listen, bin, ev, post};

/// Socket reads and writes, the `listening on` line, each printed line.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// One whole `emit` run.
const EMIT_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// `emit`
// ---------------------------------------------------------------------------

/// The counts of emit's summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Summary {
    read: u64,
    delivered: u64,
    retried: u64,
    failed: u64,
    dropped: u64,
    invalid: u64,
}

/// What one `emit` run did.
#[derive(Debug)]
struct EmitRun {
    code: Option<i32>,
    stderr: String,
    summary: Summary,
}

/// Runs `ossa-events emit ARGS` with `input` on stdin (none: stdin closed),
/// within [`EMIT_TIMEOUT`].
fn emit(args: &[&str], input: Option<Vec<u8>>) -> EmitRun {
    let mut child = bin()
        .arg("emit")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        // Written from a thread: emit reads while it sends, and the pipe is small.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let mut stdout = child.stdout.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let mut stderr = child.stderr.take().unwrap();
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + EMIT_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("emit {args:?} did not finish within {EMIT_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    assert!(
        stdout.is_empty(),
        "emit to http prints nothing on stdout: {}",
        String::from_utf8_lossy(&stdout)
    );
    let summary = parse_summary(&stderr);
    EmitRun {
        code: status.code(),
        stderr,
        summary,
    }
}

/// `emit: read N, delivered N, retried N, failed N, dropped N, invalid N`.
fn parse_summary(stderr: &str) -> Summary {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("emit: read "))
        .unwrap_or_else(|| panic!("no summary line in emit's stderr:\n{stderr}"));
    let mut nums = HashMap::new();
    for part in line.trim_start_matches("emit: ").split(", ") {
        let (name, n) = part.split_once(' ').unwrap();
        nums.insert(name.to_owned(), n.parse::<u64>().unwrap());
    }
    let get = |k: &str| {
        *nums
            .get(k)
            .unwrap_or_else(|| panic!("no '{k}' in {line:?}"))
    };
    Summary {
        read: get("read"),
        delivered: get("delivered"),
        retried: get("retried"),
        failed: get("failed"),
        dropped: get("dropped"),
        invalid: get("invalid"),
    }
}

fn all_delivered(n: u64) -> Summary {
    Summary {
        read: n,
        delivered: n,
        retried: 0,
        failed: 0,
        dropped: 0,
        invalid: 0,
    }
}

const MODES: [&str; 3] = ["structured", "binary", "batched"];

// ---------------------------------------------------------------------------
// Expected events
// ---------------------------------------------------------------------------

/// The attributes that differ from one demo run to the next.
const PER_RUN: [&str; 6] = [
    "id",
    "time",
    "ossatraceid",
    "ossainteractionid",
    "ossaspanid",
    "traceparent",
];

/// The demo run made in this process, as `listen` would print it.
fn demo_reference() -> Vec<Value> {
    let mut lines = Vec::new();
    let n = ossa_events::demo::agent_run(
        "/ossa/demo/researcher",
        &ossa_events::SystemClock,
        &mut ossa_events::FastIds,
        |ev| ossa_events::format::json::write_jsonl(ev, &mut lines),
    )
    .unwrap();
    assert_eq!(n, ossa_events::demo::EVENT_COUNT);
    String::from_utf8(lines)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `ev` without the attributes that change every run.
fn strip_per_run(ev: &Value) -> Value {
    let mut v = ev.clone();
    let o = v.as_object_mut().unwrap();
    for k in PER_RUN {
        o.remove(k);
    }
    v
}

/// For each event, the index of the first event with the same `ossaspanid`:
/// the span structure, independent of the random span ids.
fn span_pattern(evs: &[Value]) -> Vec<usize> {
    let spans: Vec<&str> = evs
        .iter()
        .map(|e| e["ossaspanid"].as_str().unwrap())
        .collect();
    spans
        .iter()
        .map(|s| spans.iter().position(|t| t == s).unwrap())
        .collect()
}

/// One generated JSON Lines event (canonical form, so `listen` prints the
/// same JSON back), cycling through data kinds and extension types.
fn generated(i: usize) -> Value {
    let id = format!("gen-{i:05}");
    let mut v = match i % 5 {
        0 => serde_json::json!({
            "specversion": "1.0", "id": id, "source": "/agents/gen", "type": "dev.ossa.tool.called",
            "subject": format!("Grüße € 😀 \"{i}\" 100%"),
            "ossaagentid": "gen", "seq": i, "even": i.is_multiple_of(2),
            "data": {"tool": "web_search", "n": i, "args": {"q": "x\ny", "list": [1, 2.5, null, true]}},
        }),
        1 => serde_json::json!({
            "specversion": "1.0", "id": id, "source": "urn:ossa:gen", "type": "dev.ossa.turn.completed",
            "datacontenttype": "application/json", "time": "2024-06-01T12:00:00.123456Z",
            "data": [i, "two", {"three": 3}],
        }),
        2 => serde_json::json!({
            "specversion": "1.0", "id": id, "source": "/s", "type": "note",
            "datacontenttype": "text/plain; charset=utf-8",
            "data": format!("line one {i}\nlíne two ✓ \"q\""),
        }),
        3 => serde_json::json!({
            "specversion": "1.0", "id": id, "source": "/s", "type": "blob",
            "datacontenttype": "application/octet-stream",
            "data_base64": "AAEC/v8NCg==",
        }),
        _ => serde_json::json!({
            "specversion": "1.0", "id": id, "source": "/s", "type": "ping",
            "exturi": "https://example.com/x?y=1", "note": "spaces and \"quotes\" é",
        }),
    };
    if i.is_multiple_of(7) {
        v["dataschema"] = Value::from("https://example.com/schema.json");
    }
    v
}

/// What `listen` prints for `sent` after a trip in `mode`. Binary mode
/// carries every extension as a string (its canonical form) and JSON data
/// with `Content-Type: application/json`, which `listen` reads back as the
/// `datacontenttype` (HTTP binding §3.1.1).
fn expected_after(sent: &Value, mode: &str) -> Value {
    let mut v = sent.clone();
    if mode == "binary" {
        let o = v.as_object_mut().unwrap();
        const CORE: [&str; 10] = [
            "specversion",
            "id",
            "source",
            "type",
            "datacontenttype",
            "dataschema",
            "subject",
            "time",
            "data",
            "data_base64",
        ];
        for (k, val) in o.iter_mut() {
            if !CORE.contains(&k.as_str()) && !val.is_string() {
                *val = Value::from(val.to_string());
            }
        }
        if o.contains_key("data") && !o.contains_key("datacontenttype") {
            o.insert("datacontenttype".into(), Value::from("application/json"));
        }
    }
    v
}

fn jsonl(events: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        serde_json::to_writer(&mut out, e).unwrap();
        out.push(b'\n');
    }
    out
}

/// Checks that `got` holds each of `sent` exactly once, as expected after a
/// trip in `mode`, and in order.
fn assert_each_once(mode: &str, sent: &[Value], got: &[Value]) {
    assert_eq!(got.len(), sent.len(), "{mode}");
    let mut seen = HashSet::new();
    for g in got {
        let id = g["id"].as_str().unwrap().to_owned();
        assert!(seen.insert(id.clone()), "{mode}: {id} printed twice");
    }
    for (i, (s, g)) in sent.iter().zip(got).enumerate() {
        assert_eq!(g, &expected_after(s, mode), "{mode}: event {i}");
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn emit_demo_reaches_listen_in_every_content_mode() {
    let reference = demo_reference();
    let want: Vec<Value> = reference.iter().map(strip_per_run).collect();
    let want_spans = span_pattern(&reference);
    assert_eq!(reference[0]["type"], "dev.ossa.workflow.started");

    let l = Listen::start(&[], IO_TIMEOUT);
    let mut all_ids = HashSet::new();
    for mode in MODES {
        let run = emit(
            &[
                "--demo",
                "--sink",
                "http",
                "--url",
                &l.url(),
                "--mode",
                mode,
            ],
            None,
        );
        assert_eq!(run.code, Some(0), "{mode}: {}", run.stderr);
        assert_eq!(run.summary, all_delivered(15), "{mode}: {}", run.stderr);
        assert!(
            run.stderr.contains("delivered 15"),
            "{mode}: {}",
            run.stderr
        );

        let got = l.events(15);
        l.no_more_lines();
        // The demo run's structure.
        assert_eq!(got[0]["type"], "dev.ossa.workflow.started", "{mode}");
        assert_eq!(got[14]["type"], "dev.ossa.workflow.completed", "{mode}");
        assert_eq!(
            got.iter()
                .filter(|e| e["type"] == "dev.ossa.tool.failed")
                .count(),
            1,
            "{mode}"
        );
        for e in &got {
            assert_eq!(e["specversion"], "1.0");
            assert_eq!(e["source"], "/ossa/demo/researcher", "{mode}");
            assert!(e["time"].is_string(), "{mode}: time");
            assert_eq!(e["ossatraceid"], got[0]["ossatraceid"], "{mode}: one trace");
            // W3C trace context of the event's own span, through every mode.
            let tp = format!(
                "00-{}-{}-01",
                e["ossatraceid"].as_str().unwrap(),
                e["ossaspanid"].as_str().unwrap()
            );
            assert_eq!(e["traceparent"], tp.as_str(), "{mode}: traceparent");
            assert_eq!(
                e["ossainteractionid"], got[0]["ossainteractionid"],
                "{mode}: one interaction"
            );
            let id = e["id"].as_str().unwrap().to_owned();
            assert!(all_ids.insert(id), "{mode}: an id printed twice");
        }
        // Everything but the per-run ids and times is the demo's, unchanged
        // and in order; the spans have the demo's structure.
        let stripped: Vec<Value> = got.iter().map(strip_per_run).collect();
        for (i, (g, w)) in stripped.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{mode}: event {i}");
        }
        assert_eq!(span_pattern(&got), want_spans, "{mode}: span structure");
    }
    assert_eq!(all_ids.len(), 45);
}

#[test]
fn two_thousand_jsonl_events_in_batched_mode_are_printed_exactly_once() {
    const N: usize = 2_000;
    let sent: Vec<Value> = (0..N).map(generated).collect();
    let l = Listen::start(&[], IO_TIMEOUT);
    let run = emit(
        &[
            "--sink",
            "http",
            "--url",
            &l.url(),
            "--mode",
            "batched",
            "--batch-size",
            "250",
        ],
        Some(jsonl(&sent)),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.summary, all_delivered(N as u64), "{}", run.stderr);
    let got = l.events(N);
    l.no_more_lines();
    assert_each_once("batched", &sent, &got);
}

#[test]
fn varied_events_arrive_unchanged_in_every_content_mode() {
    let l = Listen::start(&[], IO_TIMEOUT);
    for mode in MODES {
        let sent: Vec<Value> = (0..60)
            .map(|i| {
                let mut v = generated(i);
                v["id"] = Value::from(format!("{mode}-{i}"));
                v
            })
            .collect();
        let run = emit(
            &["--sink", "http", "--url", &l.url(), "--mode", mode],
            Some(jsonl(&sent)),
        );
        assert_eq!(run.code, Some(0), "{mode}: {}", run.stderr);
        assert_eq!(run.summary, all_delivered(60), "{mode}: {}", run.stderr);
        let got = l.events(sent.len());
        l.no_more_lines();
        assert_each_once(mode, &sent, &got);
    }
}

#[test]
fn an_invalid_line_is_reported_with_its_number_counted_and_not_sent() {
    let l = Listen::start(&[], IO_TIMEOUT);
    let good = |id: &str| {
        serde_json::to_string(&serde_json::json!({
            "specversion": "1.0", "id": id, "source": "/s", "type": "t", "data": {"ok": true}
        }))
        .unwrap()
    };
    let input = [
        good("ok-1"),
        String::new(), // a blank line: skipped, but counted as a line
        good("ok-2"),
        r#"{"specversion":"1.0","id":"bad-1","source":"/s"}"#.to_owned(), // no type
        good("ok-3"),
        r#"{"specversion":"1.0","id":"bad-2","#.to_owned(), // not JSON
        good("ok-4"),
    ]
    .join("\n");
    for mode in MODES {
        let run = emit(
            &["--sink", "http", "--url", &l.url(), "--mode", mode],
            Some(input.clone().into_bytes()),
        );
        assert_eq!(run.code, Some(1), "{mode}: {}", run.stderr);
        assert_eq!(
            run.summary,
            Summary {
                read: 6,
                delivered: 4,
                retried: 0,
                failed: 0,
                dropped: 0,
                invalid: 2,
            },
            "{mode}: {}",
            run.stderr
        );
        for lineno in [4, 6] {
            assert!(
                // `LINE: ` or, for a JSON syntax error, `LINE:COLUMN: `.
                run.stderr.contains(&format!("<stdin>:{lineno}:")),
                "{mode}: line {lineno} not reported: {}",
                run.stderr
            );
        }
        for lineno in [1, 2, 3, 5, 7] {
            assert!(
                !run.stderr.contains(&format!("<stdin>:{lineno}:")),
                "{mode}: line {lineno} reported: {}",
                run.stderr
            );
        }
        // The valid lines, in order, and nothing of the invalid ones.
        let got = l.events(4);
        l.no_more_lines();
        let ids: Vec<&str> = got.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["ok-1", "ok-2", "ok-3", "ok-4"], "{mode}");
    }
}

#[test]
fn batch_lines_are_sent_whole_or_reported_whole() {
    // A line that is a JSON array is a batch (what the core emitter's
    // `BatchFormat::JsonBatch` writes, one a line): each of its events is
    // sent, in order; a batch with an element that is no valid event, or
    // with broken JSON, is reported once and nothing of it is sent.
    let l = Listen::start(&[], IO_TIMEOUT);
    let ev =
        |id: &str| serde_json::json!({"specversion": "1.0", "id": id, "source": "/s", "type": "t"});
    let line = |v: serde_json::Value| serde_json::to_string(&v).unwrap();
    let mut escaped = ev("b-2");
    escaped["data"] = serde_json::json!({"text": "caf\u{e9} \"q\""});
    let input = [
        line(serde_json::json!([ev("b-1"), escaped])),
        line(ev("one-1")),
        "[]".to_owned(),
        line(
            serde_json::json!([ev("bad-1"), {"specversion": "1.0", "id": "bad-2", "source": "/s"}]),
        ),
        format!("  [{},", line(ev("bad-3"))),
        line(serde_json::json!([ev("b-3"), ev("b-4"), ev("b-5")])),
    ]
    .join("\n");
    for mode in MODES {
        let run = emit(
            &["--sink", "http", "--url", &l.url(), "--mode", mode],
            Some(input.clone().into_bytes()),
        );
        assert_eq!(run.code, Some(1), "{mode}: {}", run.stderr);
        assert_eq!(
            run.summary,
            Summary {
                read: 8,
                delivered: 6,
                retried: 0,
                failed: 0,
                dropped: 0,
                invalid: 2,
            },
            "{mode}: {}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("<stdin>:4: batch element 1: attribute `type`"),
            "{mode}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("<stdin>:5:"), "{mode}: {}", run.stderr);
        for lineno in [1, 2, 3, 6] {
            assert!(
                !run.stderr.contains(&format!("<stdin>:{lineno}:")),
                "{mode}: line {lineno} reported: {}",
                run.stderr
            );
        }
        let got = l.events(6);
        l.no_more_lines();
        let ids: Vec<&str> = got.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["b-1", "b-2", "one-1", "b-3", "b-4", "b-5"], "{mode}");
        assert_eq!(got[1]["data"]["text"], "caf\u{e9} \"q\"", "{mode}");
    }
}

#[test]
fn a_request_listen_refuses_is_counted_failed_and_emit_exits_1() {
    // Batches over listen's body limit are answered 413 and split down to
    // what fits: the events over the limit alone are refused, not retried,
    // counted failed, and emit's exit status says not all were delivered.
    let l = Listen::start(&["--max-body", "2000"], IO_TIMEOUT);
    let sent: Vec<Value> = (0..40)
        .map(|i| {
            let mut v = generated(i);
            if i % 10 == 7 {
                v["subject"] = Value::String("x".repeat(3000));
            }
            v
        })
        .collect();
    let run = emit(
        &[
            "--sink",
            "http",
            "--url",
            &l.url(),
            "--mode",
            "batched",
            "--batch-size",
            "40",
        ],
        Some(jsonl(&sent)),
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(
        run.summary,
        Summary {
            read: 40,
            delivered: 36,
            retried: 0,
            failed: 4,
            dropped: 0,
            invalid: 0,
        },
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("413"), "{}", run.stderr);
    let mut got: Vec<String> = l
        .events(36)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    let want: Vec<String> = (0..40)
        .filter(|i| i % 10 != 7)
        .map(|i| format!("gen-{i:05}"))
        .collect();
    assert_eq!(got, want);
    l.no_more_lines();
}

#[test]
fn listen_answers_invalid_requests_with_400_and_the_reason() {
    let l = Listen::start(&[], IO_TIMEOUT);
    let structured = "application/cloudevents+json";
    let batched = "application/cloudevents-batch+json";
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "structured, no type",
            post(structured, r#"{"specversion":"1.0","id":"1","source":"/s"}"#),
            &["type"],
        ),
        (
            "structured, empty id",
            post(structured, r#"{"specversion":"1.0","id":"","source":"/s","type":"t"}"#),
            &["id"],
        ),
        (
            "structured, specversion 0.3",
            post(structured, r#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#),
            &["specversion"],
        ),
        (
            "structured, not JSON",
            post(structured, r#"{"specversion":"1.0","id":"#),
            &[],
        ),
        (
            "structured, bad extension name",
            post(
                structured,
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","Bad-Name":"x"}"#,
            ),
            &[],
        ),
        (
            "batched, one invalid event among valid ones",
            post(batched, &format!(r#"[{},{{"id":"x"}},{}]"#, ev("b1"), ev("b3"))),
            &["1"],
        ),
        (
            "batched, not an array",
            post(batched, &ev("b4")),
            &[],
        ),
        (
            "binary, no ce-id",
            b"POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-source: /s\r\nce-type: t\r\n\
              Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
                .to_vec(),
            &["id"],
        ),
        (
            "binary, bad percent-encoding",
            b"POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: a%ZZ\r\nce-source: /s\r\n\
              ce-type: t\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
            &[],
        ),
        (
            "binary, JSON content type with a body that is not JSON",
            b"POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: 1\r\nce-source: /s\r\n\
              ce-type: t\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{nope"
                .to_vec(),
            &[],
        ),
    ];
    for (name, req, words) in &cases {
        let (code, body) = l.send(req);
        assert_eq!(code, 400, "{name}: {body}");
        assert!(!body.trim().is_empty(), "{name}: 400 without a reason");
        for w in *words {
            assert!(
                body.contains(w),
                "{name}: reason {body:?} does not name {w:?}"
            );
        }
    }
    l.no_more_lines();
    // Still serving; emit's events come through next.
    let run = emit(
        &[
            "--demo",
            "--sink",
            "http",
            "--url",
            &l.url(),
            "--mode",
            "binary",
        ],
        None,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(l.events(15).len(), 15);
    l.no_more_lines();
}
