#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The OTLP sink against a collector on loopback, read back with
//! `opentelemetry-proto`: span ids stay unique within a trace when several
//! operations share one span context (an emitter-wide `ossaspanid`), a lone
//! event of one agent lands on that agent's span, event times before
//! 1970 are not moved after it, an end event delivered again does not
//! close a later span of its key, and workflow name and agent version go
//! out under their GenAI attribute names.
#![cfg(feature = "otlp")]

mod common;

use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use ossa_events::sink::OtlpSink;
use ossa_events::{Emitter, Scratch, parse};

use common::{read_request, serve_loopback};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A collector on loopback that takes every request (200); the bodies.
fn collector() -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let s2 = seen.clone();
    let addr = serve_loopback(None, move |stream| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        while let Ok(Some(req)) = read_request(&mut r) {
            s2.lock().unwrap().push(req.body);
            let resp =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
            if w.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    });
    (addr, seen)
}

/// Emits `lines` (whole JSON events) through an OTLP sink; the spans the
/// collector took, read by opentelemetry-proto.
fn export(lines: &[String]) -> Vec<Span> {
    let (addr, seen) = collector();
    let sink = OtlpSink::builder(format!("http://{addr}")).build().unwrap();
    let emitter = Emitter::builder("/test").sink(sink).build().unwrap();
    for l in lines {
        let mut buf = vec![0u8; l.len()];
        let ev = parse::json::parse_event(l.as_bytes(), &mut Scratch::new(&mut buf)).unwrap();
        emitter.emit_event(&ev).unwrap();
    }
    let report = emitter.shutdown().unwrap();
    assert_eq!(report.delivered, lines.len() as u64, "{report:?}");
    let mut out = Vec::new();
    for body in seen.lock().unwrap().iter() {
        let req: ExportTraceServiceRequest = serde_json::from_slice(body).unwrap();
        for rs in req.resource_spans {
            for ss in rs.scope_spans {
                out.extend(ss.spans);
            }
        }
    }
    out
}

/// An event of `ty` at `time`, with trace and span ids `span` and agent
/// `agent` (none when empty).
fn line(i: usize, ty: &str, time: &str, span: &str, agent: &str, data: &str) -> String {
    let agent = if agent.is_empty() {
        String::new()
    } else {
        format!(r#","ossaagentid":"{agent}""#)
    };
    format!(
        r#"{{"specversion":"1.0","id":"e{i}","source":"/s","type":"{ty}","time":"{time}","ossatraceid":"{TRACE}","ossaspanid":"{span}"{agent},"data":{data}}}"#
    )
}

/// [`line`]s of `(type, agent, data)`, second `i` of 2026 for the `i`th.
fn lines(span: &str, evs: &[(&str, &str, &str)]) -> Vec<String> {
    evs.iter()
        .enumerate()
        .map(|(i, (ty, agent, data))| {
            let time = format!("2026-01-01T00:00:{i:02}Z");
            line(i, ty, &time, span, agent, data)
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn str_attr(s: &Span, key: &str) -> Option<String> {
    s.attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(v) => Some(v.clone()),
            _ => None,
        }
    })
}

/// OTLP `Span.span_id`: "A unique identifier for a span within a trace".
/// An emitter with one span context (`Emitter::builder().span_id(…)`, as
/// in the sink's own docs) gives every event the same `ossaspanid`; agent
/// a and then agent b both went out as that id (a had closed, so the id
/// counted as free again), and a backend keeps one of them, or mixes them
/// (and b's tool calls under a).
#[test]
fn operations_one_after_another_under_one_span_id_get_their_own_span_ids() {
    const S: &str = "00f067aa0ba902b7";
    let lines = lines(
        S,
        &[
            ("dev.ossa.agent.started", "a", r#"{"agent_id":"a"}"#),
            ("dev.ossa.agent.completed", "a", r#"{"agent_id":"a"}"#),
            ("dev.ossa.agent.started", "b", r#"{"agent_id":"b"}"#),
            (
                "dev.ossa.tool.called",
                "b",
                r#"{"tool":"x","call_id":"c1"}"#,
            ),
            (
                "dev.ossa.tool.completed",
                "b",
                r#"{"tool":"x","call_id":"c1"}"#,
            ),
            (
                "dev.ossa.tool.called",
                "b",
                r#"{"tool":"x","call_id":"c2"}"#,
            ),
            (
                "dev.ossa.tool.completed",
                "b",
                r#"{"tool":"x","call_id":"c2"}"#,
            ),
            ("dev.ossa.agent.completed", "b", r#"{"agent_id":"b"}"#),
        ],
    );
    let spans = export(&lines);
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let mut ids: Vec<String> = spans.iter().map(|s| hex(&s.span_id)).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        4,
        "span ids repeat within one trace: {:?}",
        spans
            .iter()
            .map(|s| (s.name.clone(), hex(&s.span_id)))
            .collect::<Vec<_>>()
    );
    // Each tool call still goes under agent b's span.
    let b = spans
        .iter()
        .filter(|s| s.name.starts_with("invoke_agent"))
        .find(|s| s.start_time_unix_nano > 1_767_225_601_000_000_000)
        .unwrap();
    for tool in spans.iter().filter(|s| s.name.starts_with("execute_tool")) {
        assert_eq!(tool.parent_span_id, b.span_id);
    }
}

/// The sink's docs: a lone event goes on "the open span whose id the event
/// carries" and, "from agent level down, the same `ossaagentid` (two agents
/// that share an emitter-wide context keep their own turn 1)". Agent b's
/// state update went on agent a's open turn instead, as both carry the
/// shared span id.
#[test]
fn a_lone_event_of_one_agent_does_not_land_on_another_agents_span() {
    const S: &str = "00000000000000a1";
    let lines = lines(
        S,
        &[
            ("dev.ossa.agent.started", "a", r#"{"agent_id":"a"}"#),
            ("dev.ossa.agent.started", "b", r#"{"agent_id":"b"}"#),
            ("dev.ossa.turn.started", "a", r#"{"turn":1}"#),
            ("dev.ossa.state.updated", "b", r#"{"key":"k"}"#),
        ],
    );
    // The three spans are left open at shutdown: they go out unfinished.
    let spans = export(&lines);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let holder: Vec<&Span> = spans.iter().filter(|s| !s.events.is_empty()).collect();
    assert_eq!(holder.len(), 1, "{spans:#?}");
    assert_eq!(
        str_attr(holder[0], "gen_ai.agent.id").as_deref(),
        Some("b"),
        "agent b's state update went on {:?} ({:?})",
        holder[0].name,
        holder[0].attributes
    );
}

/// OTLP times are nanoseconds since the epoch as an unsigned fixed64: a
/// time before 1970 cannot be written, and clamps to 0. It was the whole
/// seconds that clamped, not the time: 1969-12-31T23:59:59.5Z went out as
/// 1970-01-01T00:00:00.5Z, after the epoch, and a start at .9 of that
/// second came out after an end at .1 of the next one.
#[test]
fn times_before_1970_are_not_moved_after_it() {
    const S: &str = "00000000000000a1";
    let call = r#"{"tool":"x","call_id":"c"}"#;
    let lines = [
        line(
            0,
            "dev.ossa.tool.called",
            "1969-12-31T23:59:58.9Z",
            S,
            "a",
            call,
        ),
        line(
            1,
            "dev.ossa.tool.completed",
            "1969-12-31T23:59:59.1Z",
            S,
            "a",
            call,
        ),
    ];
    let spans = export(&lines);
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    assert_eq!(
        (s.start_time_unix_nano, s.end_time_unix_nano),
        (0, 0),
        "times before 1970 clamp to the epoch"
    );
}

/// CloudEvents (spec.md, `id`): "Consumers MAY assume that Events with
/// identical `source` and `id` are duplicates", and the delivery upstream
/// is at-least-once. Tool calls without a call id under one span context
/// share a key (the tool's name): a second delivery of the first call's
/// `tool.completed`, arriving after the second call started, closed the
/// second call (zero length, at its start), and that call's own end then
/// went out as a "duplicate end event".
#[test]
fn an_end_event_delivered_again_does_not_close_a_later_span_of_its_key() {
    const S: &str = "00000000000000a1";
    let call = r#"{"tool":"x"}"#;
    let t = |s: u32| format!("2026-01-01T00:00:{s:02}Z");
    let lines = [
        line(0, "dev.ossa.tool.called", &t(0), S, "a", call),
        line(1, "dev.ossa.tool.completed", &t(1), S, "a", call),
        line(2, "dev.ossa.tool.called", &t(2), S, "a", call),
        // The first call's end again: same source, same id.
        line(1, "dev.ossa.tool.completed", &t(1), S, "a", call),
        line(4, "dev.ossa.tool.completed", &t(4), S, "a", call),
    ];
    let spans = export(&lines);
    let base = 1_767_225_600_000_000_000u64;
    let mut tools: Vec<(u64, u64)> = spans
        .iter()
        .filter(|s| s.name == "execute_tool x")
        .map(|s| {
            (
                (s.start_time_unix_nano - base) / 1_000_000_000,
                (s.end_time_unix_nano - base) / 1_000_000_000,
            )
        })
        .collect();
    tools.sort_unstable();
    assert_eq!(tools, [(0, 1), (2, 4)], "{spans:#?}");
    assert!(
        spans
            .iter()
            .all(|s| str_attr(s, "ossa.span.incomplete").is_none())
    );
}

/// Semantic conventions v1.41.0 (`SEMCONV_VERSION`), `invoke_workflow`
/// span: "**Span name** SHOULD be `invoke_workflow {gen_ai.workflow.name}`",
/// `gen_ai.workflow.name` Conditionally Required "when available"; the
/// `invoke_agent` spans take `gen_ai.agent.version` ("when available").
/// The sink wrote them as `ossa.workflow.name` and `ossa.agent.version`,
/// which no GenAI-aware backend reads.
#[test]
fn workflow_name_and_agent_version_use_the_genai_attributes() {
    let lines = lines(
        "00000000000000a1",
        &[
            (
                "dev.ossa.workflow.started",
                "",
                r#"{"workflow_id":"w-1","name":"nightly"}"#,
            ),
            (
                "dev.ossa.agent.started",
                "a",
                r#"{"agent_id":"a","name":"Researcher","version":"1.2.0"}"#,
            ),
            ("dev.ossa.agent.completed", "a", r#"{"agent_id":"a"}"#),
            (
                "dev.ossa.workflow.completed",
                "",
                r#"{"workflow_id":"w-1"}"#,
            ),
        ],
    );
    let spans = export(&lines);
    let wf = spans
        .iter()
        .find(|s| s.name.starts_with("invoke_workflow"))
        .unwrap();
    assert_eq!(wf.name, "invoke_workflow nightly");
    assert_eq!(
        str_attr(wf, "gen_ai.workflow.name").as_deref(),
        Some("nightly")
    );
    assert_eq!(str_attr(wf, "ossa.workflow.name"), None);
    let agent = spans
        .iter()
        .find(|s| s.name.starts_with("invoke_agent"))
        .unwrap();
    assert_eq!(
        str_attr(agent, "gen_ai.agent.version").as_deref(),
        Some("1.2.0")
    );
    assert_eq!(str_attr(agent, "ossa.agent.version"), None);
}

/// OTLP `Span.parent_span_id`: "The `span_id` of this span's parent span".
/// An event whose `ossaparentspanid` names its own span (a producer that
/// copied its span id into both, or hostile input) made a span that is its
/// own parent: a cycle, which a backend cannot place in a tree (and may
/// walk for ever). Such a hint names no parent; the parent rules apply.
#[test]
fn a_parent_hint_naming_the_span_itself_is_not_its_parent() {
    const AGENT: &str = "00000000000000a1";
    const TOOL: &str = "00000000000000a3";
    const LONE_END: &str = "00000000000000a4";
    let own = |l: String, id: &str| {
        l.replacen(
            r#","data""#,
            &format!(r#","ossaparentspanid":"{id}","data""#),
            1,
        )
    };
    let t = |s: u32| format!("2026-01-01T00:00:{s:02}Z");
    let lines = [
        line(
            0,
            "dev.ossa.agent.started",
            &t(0),
            AGENT,
            "a",
            r#"{"agent_id":"a"}"#,
        ),
        own(
            line(
                1,
                "dev.ossa.tool.called",
                &t(1),
                TOOL,
                "a",
                r#"{"tool":"x","call_id":"c"}"#,
            ),
            TOOL,
        ),
        line(
            2,
            "dev.ossa.tool.completed",
            &t(2),
            TOOL,
            "a",
            r#"{"tool":"x","call_id":"c"}"#,
        ),
        // An end without its start, naming itself as its parent too.
        own(
            line(
                3,
                "dev.ossa.tool.completed",
                &t(3),
                LONE_END,
                "a",
                r#"{"tool":"y","call_id":"d"}"#,
            ),
            LONE_END,
        ),
        line(
            4,
            "dev.ossa.agent.completed",
            &t(4),
            AGENT,
            "a",
            r#"{"agent_id":"a"}"#,
        ),
    ];
    let spans = export(&lines);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    for s in &spans {
        assert_ne!(
            Some(&s.span_id),
            Some(&s.parent_span_id).filter(|p| !p.is_empty()),
            "span {} ({}) is its own parent",
            hex(&s.span_id),
            s.name
        );
    }
    for name in ["execute_tool x", "execute_tool y"] {
        let tool = spans.iter().find(|s| s.name == name).unwrap();
        assert_eq!(
            hex(&tool.parent_span_id),
            AGENT,
            "{name}: the open agent span"
        );
    }
}

/// Semantic conventions, "Recording errors": a span whose operation failed
/// SHOULD get status Error. OSSA has no `workflow.failed` type: a failed
/// workflow ends with `workflow.completed` and `status: "failed"` (what
/// `OssaLayer` emits for one), and an agent may end so too. Those spans
/// went out with status unset, as if they had succeeded.
#[test]
fn a_completed_event_with_status_failed_ends_its_span_in_error() {
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
    let lines = lines(
        "00000000000000b1",
        &[
            (
                "dev.ossa.workflow.started",
                "",
                r#"{"workflow_id":"w-1","name":"nightly"}"#,
            ),
            (
                "dev.ossa.agent.started",
                "a",
                r#"{"agent_id":"a","name":"ok"}"#,
            ),
            (
                "dev.ossa.agent.completed",
                "a",
                r#"{"agent_id":"a","status":"success"}"#,
            ),
            (
                "dev.ossa.workflow.completed",
                "",
                r#"{"workflow_id":"w-1","status":"failed","error":{"message":"step 3 timed out","code":"timeout"}}"#,
            ),
            (
                "dev.ossa.workflow.started",
                "",
                r#"{"workflow_id":"w-2","name":"bare"}"#,
            ),
            (
                "dev.ossa.workflow.completed",
                "",
                r#"{"workflow_id":"w-2","status":"failed"}"#,
            ),
        ],
    );
    let spans = export(&lines);
    let status = |prefix: &str| {
        let s = spans.iter().find(|s| s.name == prefix).unwrap();
        let st = s.status.clone().unwrap_or_default();
        (st.code, st.message, str_attr(s, "error.type"))
    };
    assert_eq!(
        status("invoke_workflow nightly"),
        (
            StatusCode::Error as i32,
            "step 3 timed out".to_owned(),
            Some("timeout".to_owned())
        )
    );
    assert_eq!(
        status("invoke_workflow bare"),
        (
            StatusCode::Error as i32,
            "failed".to_owned(),
            Some("_OTHER".to_owned())
        )
    );
    assert_eq!(
        status("invoke_agent ok"),
        (StatusCode::Unset as i32, String::new(), None)
    );
}
