//! `validate --schemas` and `listen --schemas`, run as the real binary:
//! payloads that break their schema are reported (validate) or answered 400
//! (listen) with the JSON pointer and the keyword; a schema that cannot be
//! had is a 503, never a pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{Listen, bin, post};

fn validate(args: &[&str], input: &str) -> Output {
    let mut child = bin()
        .arg("validate")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A usage error exits before reading stdin: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn line(id: &str, ty: &str, extra: &str, data: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"/s","type":"{ty}"{extra},"data":{data}}}"#
    )
}

/// A schema directory: one file per type, one found by its `$id`, one that
/// `$ref`s a built-in OSSA schema.
fn schema_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ossa-schemas-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("com.acme.order.placed.json"),
        r#"{"type":"object","required":["order"],"properties":{"order":{"type":"string"}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("sku.json"),
        r#"{"$id":"https://acme.example/schemas/sku.json","type":"object","required":["sku"]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("com.acme.tool.retried.json"),
        r#"{"allOf":[{"$ref":"https://ossa.dev/schemas/events/v1/dev.ossa.tool.called.json"}],"required":["attempt"],"properties":{"attempt":{"type":"integer"}}}"#,
    )
    .unwrap();
    dir
}

#[test]
fn validate_reports_each_payload_that_breaks_its_schema_and_prints_the_others() {
    let dir = schema_dir("validate");
    let sku = r#","dataschema":"https://acme.example/schemas/sku.json""#;
    let input = [
        line("1", "com.acme.order.placed", "", r#"{"order":"o-1"}"#),
        line("2", "com.acme.order.placed", "", r#"{"order":7}"#),
        line("3", "com.acme.order.placed", sku, r#"{"sku":"s"}"#),
        line("4", "com.acme.order.placed", sku, r#"{"order":"o"}"#),
        line(
            "5",
            "com.acme.tool.retried",
            "",
            r#"{"tool":"t","attempt":2}"#,
        ),
        line("6", "com.acme.tool.retried", "", r#"{"attempt":2}"#),
        line("7", "dev.ossa.tool.called", "", r#"{"tol":3}"#),
        line("8", "com.other", "", "{}"),
    ]
    .join("\n");
    let out = validate(&["--schemas", dir.to_str().unwrap()], &input);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let printed: Vec<_> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].clone())
        .collect();
    assert_eq!(printed, ["1", "3", "5", "8"], "{stdout}");
    for want in [
        r#"<stdin>:2: invalid payload: data does not match schema file://"#,
        r#"at "/order" (type): 7 is not of type "string""#,
        r#"<stdin>:4: invalid payload: data does not match schema https://acme.example/schemas/sku.json at "" (required)"#,
        r#"<stdin>:6: invalid payload:"#,
        r#"<stdin>:7: invalid payload: data does not match schema https://ossa.dev/schemas/events/v1/dev.ossa.tool.called.json at "" (required): "tool" is a required property"#,
    ] {
        assert!(stderr.contains(want), "missing {want:?} in:\n{stderr}");
    }
    // A type without a schema passes unless one is required.
    let out = validate(
        &["--schemas", dir.to_str().unwrap(), "--require-schema"],
        &line("8", "com.other", "", "{}"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no schema for type com.other"));
    // The demo run validates against the built-in schemas.
    let demo = bin().arg("demo").output().unwrap();
    let out = validate(&["--schemas", "builtin"], &text(&demo.stdout));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // In a batch the element is named from 0, as a parse error names it
    // (it said "batch event 2" for element 1).
    let batch = format!(
        "[{},\n{}]",
        line("b-0", "com.acme.order.placed", "", r#"{"order":"o"}"#),
        line("b-1", "com.acme.order.placed", "", r#"{"order":7}"#)
    );
    let out = validate(
        &["--schemas", dir.to_str().unwrap(), "--format", "batch"],
        &batch,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("<stdin>:2: batch element 1: invalid payload"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn validate_refuses_a_schema_source_it_cannot_use_as_a_usage_error() {
    let dir = schema_dir("broken");
    std::fs::write(dir.join("com.acme.bad.json"), r#"{"type": 12}"#).unwrap();
    let out = validate(&["--schemas", dir.to_str().unwrap()], "{}");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("com.acme.bad.json") && err.contains("not a valid JSON Schema"),
        "{err}"
    );
    for (args, want) in [
        (
            &["--schemas", "/nonexistent/dir"][..],
            "cannot load schemas",
        ),
        (
            &["--schemas", "builtin", "--schema-api", "confluent"],
            "needs --schemas URL",
        ),
        (
            &["--schemas", "http://h/", "--schema-api", "avro"],
            "unknown --schema-api 'avro'",
        ),
        (&["--require-schema"], "--schemas"),
    ] {
        let out = validate(args, "{}");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(want),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

const IO_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn listen_answers_400_with_the_pointer_and_keyword_and_prints_nothing_of_that_request() {
    let l = Listen::start(&["--schemas", "builtin"], IO_TIMEOUT);
    let good = line("g1", "dev.ossa.tool.called", "", r#"{"tool":"search"}"#);
    let bad = line("b1", "dev.ossa.tool.called", "", r#"{"tool":3}"#);
    let (code, body) = l.send(&post("application/cloudevents+json", &bad));
    assert_eq!(code, 400);
    assert_eq!(
        body.trim_end(),
        r#"event b1: invalid payload: data does not match schema https://ossa.dev/schemas/events/v1/dev.ossa.tool.called.json at "/tool" (type): 3 is not of type "string""#
    );
    // One bad event refuses its whole batch.
    let batch = format!("[{good},{bad}]");
    let (code, body) = l.send(&post("application/cloudevents-batch+json", &batch));
    assert_eq!(code, 400);
    assert!(body.contains("(type)"), "{body}");
    l.no_more_lines();
    // Binary mode: the body is the data.
    let data = r#"{"agent_id":"a","error":{}}"#;
    let req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: bin-1\r\nce-source: /s\r\n\
         ce-type: dev.ossa.agent.failed\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{data}",
        data.len()
    );
    let (code, body) = l.send(req.as_bytes());
    assert_eq!(code, 400);
    assert!(body.contains(r#"at "/error" (required)"#), "{body}");
    assert_eq!(l.send(&post("application/cloudevents+json", &good)).0, 202);
    assert_eq!(l.line(), good);
    l.no_more_lines();
}

/// A payload whose schema cannot be had is not checked, and `validate`
/// says so; it said "invalid payload", naming the payload for a registry
/// that was down.
#[test]
fn validate_says_a_schema_it_cannot_reach_is_unavailable_not_the_payload_invalid() {
    // Nothing listens on port 9.
    let ev = line("c1", "com.acme.order.placed", "", r#"{"order":"o"}"#);
    let out = validate(&["--schemas", "http://127.0.0.1:9/schemas/"], &ev);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "an unchecked event was printed");
    assert!(
        stderr.contains(
            "<stdin>: schema unavailable: http://127.0.0.1:9/schemas/com.acme.order.placed.json"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("invalid payload"), "{stderr}");
}

#[test]
fn listen_answers_503_when_the_schema_registry_cannot_be_reached() {
    // Nothing listens on port 9.
    let l = Listen::start(&["--schemas", "http://127.0.0.1:9/schemas/"], IO_TIMEOUT);
    let ev = line("c1", "com.acme.order.placed", "", r#"{"order":"o"}"#);
    let (code, body) = l.send(&post("application/cloudevents+json", &ev));
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("schema unavailable: http://127.0.0.1:9/schemas/com.acme.order.placed.json"),
        "{body}"
    );
    l.no_more_lines();
    // OSSA types still have their built-in schemas.
    let ok = line("c2", "dev.ossa.state.updated", "", r#"{"key":"k"}"#);
    assert_eq!(l.send(&post("application/cloudevents+json", &ok)).0, 202);
    assert_eq!(l.line(), ok);
}

/// A payload's number is checked as the number it is: `970.8819781538285`
/// is over a `maximum` of `970.8819781538284` (serde_json's default float
/// reading took it for its neighbour, 970.8819781538284, and passed it).
/// The `schemas` and `otlp` features turn on serde_json's
/// `float_roundtrip` for that; `cargo test` alone would not show it gone,
/// as a dev-dependency (rig-core) turns it on in test builds.
#[test]
fn a_float_is_checked_as_written_at_a_maximum_edge() {
    let dir = std::env::temp_dir().join(format!("ossa-schemas-float-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("com.acme.reading.json"),
        r#"{"type":"object","properties":{"x":{"maximum":970.8819781538284}}}"#,
    )
    .unwrap();
    let args = ["--schemas", dir.to_str().unwrap()];
    let over = line("1", "com.acme.reading", "", r#"{"x":970.8819781538285}"#) + "\n";
    let o = validate(&args, &over);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("970.8819781538285 is greater than the maximum"),
        "{}",
        text(&o.stderr)
    );
    let at = line("1", "com.acme.reading", "", r#"{"x":970.8819781538284}"#) + "\n";
    let o = validate(&args, &at);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let manifest = include_str!("../Cargo.toml");
    for feature in ["schemas", "otlp"] {
        let decl = manifest
            .lines()
            .find(|l| l.starts_with(&format!("{feature} = [")))
            .unwrap();
        assert!(decl.contains("\"serde_json/float_roundtrip\""), "{decl}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
