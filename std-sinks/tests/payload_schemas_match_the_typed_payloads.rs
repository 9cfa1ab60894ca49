//! The built-in OSSA payload schemas agree with the typed payloads of
//! `ossa.rs`; every OSSA event in the repository validates; payloads with a
//! wrong type or a missing required member are refused with the right JSON
//! pointer and keyword, at emit too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use ossa_events::format::json;
use ossa_events::schema::{Checked, SchemaError, SchemaRegistry, Violation, builtin_schema};
use ossa_events::sink::NullSink;
use ossa_events::{
    Emitter, Error, Event, EventBuilder, RawJson, Reason, Scratch, ossa, parse::json::parse_event,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn raw(s: &'static str) -> Option<RawJson<'static>> {
    Some(RawJson::new(s).unwrap())
}

const ERR: ossa::ErrorInfo<'static> = ossa::ErrorInfo {
    message: "timed out",
    code: Some("timeout"),
    retryable: Some(true),
};

/// Each payload with every member set, as its event's `data`.
fn full_payloads() -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    macro_rules! add {
        ($p:expr) => {{
            let p = $p;
            let ev = Event::builder()
                .id("1")
                .source("/a")
                .ossa(&p)
                .build()
                .unwrap();
            let v: Value = serde_json::from_slice(&json::to_vec(&ev).unwrap()).unwrap();
            let ty = *ossa::EVENT_TYPES.iter().find(|t| **t == ev.ty()).unwrap();
            out.push((ty, v["data"].clone()));
            // And through the checker's own path (a serde-less payload).
            let checked = SchemaRegistry::builtin().check(&ev).unwrap();
            assert!(matches!(checked, Checked::Valid { .. }), "{}", ev.ty());
        }};
    }
    add!(ossa::WorkflowStarted {
        workflow_id: "wf",
        name: Some("n"),
        input: raw(r#"{"a":[1,2]}"#)
    });
    add!(ossa::WorkflowCompleted {
        workflow_id: "wf",
        status: "success",
        output: raw("[]"),
        duration_ms: Some(5)
    });
    add!(ossa::AgentStarted {
        agent_id: "a",
        name: Some("A"),
        version: Some("1.0"),
        input: raw(r#""hi""#)
    });
    add!(ossa::AgentCompleted {
        agent_id: "a",
        status: "success",
        output: raw("null"),
        duration_ms: Some(0)
    });
    add!(ossa::AgentFailed {
        agent_id: "a",
        error: ERR,
        duration_ms: Some(u64::MAX)
    });
    add!(ossa::TurnStarted {
        turn: 1,
        input: raw("3")
    });
    add!(ossa::TurnCompleted {
        turn: 1,
        output: raw("true"),
        usage: Some(ossa::TokenUsage {
            input_tokens: 10,
            output_tokens: 2
        }),
        duration_ms: Some(9)
    });
    add!(ossa::ToolCalled {
        tool: "search",
        call_id: Some("c1"),
        arguments: raw(r#"{"q":"x"}"#)
    });
    add!(ossa::ToolCompleted {
        tool: "search",
        call_id: Some("c1"),
        result: raw("[1]"),
        duration_ms: Some(3)
    });
    add!(ossa::ToolFailed {
        tool: "search",
        call_id: Some("c1"),
        error: ERR,
        duration_ms: Some(3)
    });
    add!(ossa::StateUpdated {
        key: "goal",
        value: raw(r#"{"v":1}"#)
    });
    out
}

/// Each payload with only its required members (the `Default` of each).
#[test]
fn every_typed_payload_validates_full_and_minimal() {
    let full = full_payloads();
    assert_eq!(full.len(), 11);
    let mut types: Vec<_> = full.iter().map(|(t, _)| *t).collect();
    types.sort_unstable();
    let mut all = ossa::EVENT_TYPES;
    all.sort_unstable();
    assert_eq!(types, all);
    let r = SchemaRegistry::builtin();
    macro_rules! minimal {
        ($($p:ty),*) => {$(
            let p = <$p>::default();
            // An empty subject breaks a CloudEvents rule; the data is what is checked.
            let ev = Event::builder().id("1").source("/a").ossa(&p).subject("s").build().unwrap();
            assert!(matches!(r.check(&ev), Ok(Checked::Valid { .. })), "{}", ev.ty());
        )*};
    }
    minimal!(
        ossa::WorkflowStarted<'_>,
        ossa::WorkflowCompleted<'_>,
        ossa::AgentStarted<'_>,
        ossa::AgentCompleted<'_>,
        ossa::AgentFailed<'_>,
        ossa::TurnStarted<'_>,
        ossa::TurnCompleted<'_>,
        ossa::ToolCalled<'_>,
        ossa::ToolCompleted<'_>,
        ossa::ToolFailed<'_>,
        ossa::StateUpdated<'_>
    );
}

/// Checks `data` as the data of an event of type `ty`.
fn check(ty: &str, data: &Value) -> Result<Checked, SchemaError> {
    let text = data.to_string();
    let ev = Event::builder()
        .id("1")
        .source("/a")
        .ty(ty)
        .data_json(&text)
        .build()
        .unwrap();
    SchemaRegistry::builtin().check(&ev)
}

fn violation(r: Result<Checked, SchemaError>) -> Violation {
    match r {
        Err(SchemaError::Violation(v)) => v,
        other => panic!("expected a violation, got {other:?}"),
    }
}

/// A value of another JSON type than `ty` (a schema `type`).
fn wrong_for(ty: &str) -> Value {
    match ty {
        "string" => json!(3),
        "integer" => json!("12"),
        "boolean" => json!("yes"),
        "object" => json!([1]),
        other => panic!("no wrong value for {other}"),
    }
}

/// Every typed member of every schema (nested ones too), with its pointer
/// and schema type: `("/error/code", "string")`.
fn typed_members(schema: &Value, at: &str, out: &mut Vec<(String, String)>) {
    let Some(props) = schema["properties"].as_object() else {
        return;
    };
    for (name, p) in props {
        let path = format!("{at}/{name}");
        if let Some(t) = p["type"].as_str() {
            out.push((path.clone(), t.to_string()));
        }
        typed_members(p, &path, out);
    }
}

fn set_at(data: &mut Value, pointer: &str, v: Value) {
    *data.pointer_mut(pointer).unwrap() = v;
}

#[test]
fn each_schema_refuses_a_wrong_type_in_every_typed_member_with_its_path() {
    let mut checked = 0;
    for (ty, data) in full_payloads() {
        let schema: Value = serde_json::from_str(builtin_schema(ty).unwrap()).unwrap();
        let mut members = Vec::new();
        typed_members(&schema, "", &mut members);
        assert!(!members.is_empty(), "{ty}");
        for (path, t) in members {
            let mut bad = data.clone();
            set_at(&mut bad, &path, wrong_for(&t));
            let v = violation(check(ty, &bad));
            assert_eq!(
                (v.instance_path.as_str(), v.keyword.as_str()),
                (path.as_str(), "type"),
                "{ty} {path}: {}",
                v.message
            );
            assert_eq!(v.schema, ossa::schema_uri(ty).unwrap());
            checked += 1;
        }
        // And the payload itself is no object at all.
        let v = violation(check(ty, &json!("a string")));
        assert_eq!((v.instance_path.as_str(), v.keyword.as_str()), ("", "type"));
    }
    assert!(checked >= 30, "{checked}");
}

#[test]
fn the_issue_s_example_is_refused_and_an_event_without_data_too() {
    let v = violation(check(ossa::TOOL_CALLED, &json!({"tol": 3})));
    assert_eq!(
        (v.instance_path.as_str(), v.keyword.as_str()),
        ("", "required")
    );
    assert!(v.message.contains("\"tool\""), "{}", v.message);
    let ev = Event::builder()
        .id("1")
        .source("/a")
        .ty(ossa::AGENT_STARTED)
        .build()
        .unwrap();
    let v = violation(SchemaRegistry::builtin().check(&ev));
    assert_eq!(v.keyword, "type");
    // Negative counts are refused by `minimum`.
    let v = violation(check(
        ossa::TURN_COMPLETED,
        &json!({"turn": 1, "usage": {"input_tokens": -1, "output_tokens": 0}}),
    ));
    assert_eq!(
        (v.instance_path.as_str(), v.keyword.as_str()),
        ("/usage/input_tokens", "minimum")
    );
    // Binary data cannot be checked against a JSON Schema.
    let ev = Event::builder()
        .id("1")
        .source("/a")
        .ty(ossa::TOOL_CALLED)
        .data_binary("application/octet-stream", b"\x00\x01")
        .build()
        .unwrap();
    assert!(matches!(
        SchemaRegistry::builtin().check(&ev),
        Err(SchemaError::NotJson { .. })
    ));
}

/// The JSON events of the repository that carry an OSSA type: the README's,
/// the fuzz seeds', the CLI demo run's.
#[test]
fn every_ossa_example_in_the_repository_validates() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut texts: Vec<(String, String)> = Vec::new();
    for dir in [
        "fuzz/corpus/parse_event",
        "fuzz/corpus/parse_batch",
        "fuzz/corpus/parse_http",
        "fuzz/corpus/parse_kafka",
    ] {
        for e in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
            let p = e.unwrap().path();
            // The committed seeds only: what a local fuzzing run added to
            // the corpus (ignored by git) is mutated input, not an example.
            let seed = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"));
            if !seed {
                continue;
            }
            if let Ok(t) = std::fs::read_to_string(&p) {
                texts.push((p.display().to_string(), t));
            }
        }
    }
    texts.push((
        "README.md".into(),
        std::fs::read_to_string(format!("{root}/README.md")).unwrap(),
    ));
    // Every JSON object that holds an OSSA type, wherever it sits in a file.
    let r = SchemaRegistry::builtin();
    let mut seen = 0;
    let mut scratch = vec![0u8; 64 * 1024];
    for (name, text) in &texts {
        for (i, _) in text.match_indices("{\"specversion\"") {
            let rest = &text[i..];
            let mut de = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
            let Some(Ok(v)) = de.next() else { continue };
            let Some(ty) = v["type"].as_str() else {
                continue;
            };
            if !ty.starts_with("dev.ossa.") {
                continue;
            }
            let line = v.to_string();
            let ev = parse_event(line.as_bytes(), &mut Scratch::new(&mut scratch)).unwrap();
            assert!(
                matches!(r.check(&ev), Ok(Checked::Valid { .. })),
                "{name}: {line}: {:?}",
                r.check(&ev)
            );
            seen += 1;
        }
    }
    // The demo run (`ossa-events demo`, the examples' run).
    let n = ossa_events::demo::agent_run(
        "/ossa/demo",
        &ossa_events::SystemClock,
        &mut ossa_events::FastIds,
        |ev| r.check(ev).map(|_| ()),
    )
    .unwrap();
    assert!(n >= 10 && seen >= 2, "{n} {seen}");
}

#[test]
fn the_emitter_refuses_counts_and_reports_a_bad_payload_and_sets_dataschema() {
    let reported = Arc::new(Mutex::new(Vec::new()));
    let log = reported.clone();
    let emitter = Emitter::builder("/agents/a")
        .sink(NullSink::new())
        .schemas(SchemaRegistry::builtin())
        .dataschema(true)
        .sequence(true)
        .on_undelivered(move |u| {
            log.lock()
                .unwrap()
                .push((u.reason, u.id.to_string(), u.error.to_string()))
        })
        .build()
        .unwrap();
    let bad = emitter.emit(
        EventBuilder::new()
            .id("bad-1")
            .ty(ossa::TOOL_CALLED)
            .data_json(r#"{"tool":3}"#),
    );
    let Err(Error::Schema(e)) = bad else {
        panic!("{bad:?}")
    };
    assert!(matches!(*e, SchemaError::Violation(_)));
    emitter
        .emit_ossa(&ossa::ToolCalled {
            tool: "search",
            ..Default::default()
        })
        .unwrap();
    // Forwarded events are checked too.
    let line = br#"{"specversion":"1.0","id":"fw-1","source":"/b","type":"dev.ossa.agent.started","data":{"agent_id":7}}"#;
    let mut buf = [0u8; 256];
    let ev = parse_event(line, &mut Scratch::new(&mut buf)).unwrap();
    assert!(matches!(emitter.emit_event(&ev), Err(Error::Schema(_))));
    let m = emitter.metrics();
    assert_eq!((m.rejected, m.emitted), (2, 1));
    // The refused event took no sequence number.
    assert_eq!(emitter.next_sequence("/agents/a"), 2);
    let reported = reported.lock().unwrap();
    assert_eq!(reported.len(), 2);
    assert_eq!(reported[0].0, Reason::Rejected);
    assert_eq!(reported[0].1, "bad-1");
    assert!(
        reported[0].2.contains("at \"/tool\" (type)"),
        "{}",
        reported[0].2
    );
    assert_eq!(reported[1].1, "fw-1");
    assert_eq!(emitter.flush().unwrap().delivered, 1);
}

/// Which member of a payload to break, and how.
#[derive(Debug, Clone)]
enum Break {
    /// Drop a required member (top level, or of the nested `error`).
    Remove(usize),
    /// Give a typed member a value of another JSON type.
    WrongType(usize, usize),
}

fn wrong_values() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(1.5),
        json!(-7),
        json!("s"),
        json!([]),
        json!({}),
        json!([{"x": 1}]),
    ]
}

/// Whether `v` is a valid value of schema type `t` (with `minimum: 0` for integers).
fn fits(v: &Value, t: &str) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.as_u64().is_some(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_broken_payload_is_refused_at_the_broken_member(
        which in 0usize..11,
        brk in prop_oneof![
            (0usize..8).prop_map(Break::Remove),
            (0usize..8, 0usize..8).prop_map(|(a, b)| Break::WrongType(a, b)),
        ],
    ) {
        let (ty, data) = full_payloads().swap_remove(which);
        let schema: Value = serde_json::from_str(builtin_schema(ty).unwrap()).unwrap();
        let mut bad = data.clone();
        match brk {
            Break::Remove(i) => {
                // Required members, with the pointer of the object holding them.
                let mut req: Vec<(String, String)> = schema["required"].as_array().unwrap()
                    .iter().map(|n| (String::new(), n.as_str().unwrap().to_string())).collect();
                for nested in ["error", "usage"] {
                    if let Some(r) = schema["properties"][nested]["required"].as_array() {
                        req.extend(r.iter().map(|n| (format!("/{nested}"), n.as_str().unwrap().to_string())));
                    }
                }
                let (at, name) = req[i % req.len()].clone();
                bad.pointer_mut(&at).unwrap().as_object_mut().unwrap().remove(&name);
                let v = violation(check(ty, &bad));
                prop_assert_eq!((v.instance_path.as_str(), v.keyword.as_str()), (at.as_str(), "required"));
                prop_assert!(v.message.contains(&format!("\"{name}\"")), "{}", v.message);
            }
            Break::WrongType(m, w) => {
                let mut members = Vec::new();
                typed_members(&schema, "", &mut members);
                let (path, t) = members[m % members.len()].clone();
                let values = wrong_values();
                // The first wrong value from `w` on that does not fit.
                let value = (0..values.len()).map(|k| &values[(w + k) % values.len()])
                    .find(|v| !fits(v, &t)).unwrap().clone();
                let negative = value.as_i64().is_some_and(|n| n < 0);
                set_at(&mut bad, &path, value);
                let v = violation(check(ty, &bad));
                let want = if t == "integer" && negative { "minimum" } else { "type" };
                prop_assert_eq!((v.instance_path.as_str(), v.keyword.as_str()), (path.as_str(), want));
            }
        }
    }
}
