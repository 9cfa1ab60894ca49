#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The OTLP sink against a collector on loopback: what it sends is read by
//! OpenTelemetry's own `opentelemetry-proto` types (serde, OTLP/HTTP JSON)
//! into an `ExportTraceServiceRequest`, and the span tree, ids, times,
//! status and GenAI attributes are those of the run that was emitted: the
//! demo run (workflow → agent → two turns → three tool calls, one failing)
//! and the firmware example's run. Also: retries through a 503, and the
//! spans left open at shutdown.
#![cfg(feature = "otlp")]

mod common;

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use ossa_events::sink::OtlpSink;
use ossa_events::{
    Emitter, EventBuilder, FastIds, RetryPolicy, Scratch, SystemClock, demo, ossa, parse,
};

use common::{header, read_request, serve_loopback};

/// What the collector saw: each request's status answered, path, content
/// type and body.
type Seen = Arc<Mutex<Vec<(u16, String, String, Vec<u8>)>>>;

/// A collector on loopback answering the statuses of `script` in turn
/// (then 200 for ever), each with `Retry-After: 0` when not 2xx.
fn collector(script: Vec<u16>) -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let script = Arc::new(Mutex::new(script.into_iter()));
    let s2 = seen.clone();
    let addr = serve_loopback(None, move |stream| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        while let Ok(Some(req)) = read_request(&mut r) {
            let status = script.lock().unwrap().next().unwrap_or(200);
            let ct = header(&req.headers, "content-type")
                .unwrap_or("")
                .to_owned();
            s2.lock()
                .unwrap()
                .push((status, req.path.clone(), ct, req.body));
            let extra = if status == 200 {
                ""
            } else {
                "Retry-After: 0\r\n"
            };
            let resp = format!(
                "HTTP/1.1 {status} X\r\n{extra}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
            );
            if w.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    });
    (addr, seen)
}

/// The spans of the requests the collector accepted, read by opentelemetry-proto.
fn accepted_spans(seen: &Seen) -> Vec<Span> {
    let mut out = Vec::new();
    for (status, path, ct, body) in seen.lock().unwrap().iter() {
        assert_eq!(path, "/v1/traces");
        assert_eq!(ct, "application/json");
        let req: ExportTraceServiceRequest = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)));
        if *status != 200 {
            continue;
        }
        for rs in req.resource_spans {
            let res = rs.resource.unwrap();
            assert_eq!(
                str_attr(&res.attributes, "service.name"),
                Some("ossa-events".into())
            );
            for ss in rs.scope_spans {
                assert_eq!(ss.scope.unwrap().name, "ossa-events");
                assert_eq!(ss.schema_url, ossa_events::sink::otlp::SCHEMA_URL);
                out.extend(ss.spans);
            }
        }
    }
    out
}

fn str_attr(
    attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

fn int_attr(attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<i64> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::IntValue(n) => Some(*n),
            _ => None,
        }
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One event of a captured run, as the test needs it.
#[derive(Debug, Clone)]
struct Ev {
    id: String,
    ty: String,
    span: String,
    trace: String,
    time_ns: u64,
    interaction: Option<String>,
}

fn read(lines: &[String]) -> Vec<Ev> {
    lines
        .iter()
        .map(|l| {
            let mut buf = vec![0u8; l.len()];
            let ev = parse::json::parse_event(l.as_bytes(), &mut Scratch::new(&mut buf)).unwrap();
            let t = ev.time().unwrap();
            Ev {
                id: ev.id().into(),
                ty: ev.ty().into(),
                span: ev.ossa_span_id().unwrap().into(),
                trace: ev.ossa_trace_id().unwrap().into(),
                time_ns: t.unix_seconds() as u64 * 1_000_000_000 + u64::from(t.nanos()),
                interaction: ev.ossa_interaction_id().map(Into::into),
            }
        })
        .collect()
}

/// Emits `lines` through an OTLP sink to a collector answering `script`.
fn export(
    lines: &[String],
    script: Vec<u16>,
) -> (
    Vec<Span>,
    ossa_events::Metrics,
    ossa_events::sink::otlp::OtlpCounts,
) {
    let (addr, seen) = collector(script);
    let sink = OtlpSink::builder(format!("http://{addr}")).build().unwrap();
    let stats = sink.stats();
    let emitter = Emitter::builder("/test")
        .sink(sink)
        .retry(RetryPolicy::default().base(Duration::from_millis(1)))
        .build()
        .unwrap();
    for l in lines {
        let mut buf = vec![0u8; l.len()];
        let ev = parse::json::parse_event(l.as_bytes(), &mut Scratch::new(&mut buf)).unwrap();
        emitter.emit_event(&ev).unwrap();
    }
    emitter.shutdown().unwrap();
    let m = emitter.metrics();
    (accepted_spans(&seen), m, stats.get())
}

fn demo_lines() -> Vec<String> {
    let mut lines = Vec::new();
    demo::agent_run("/ossa/demo/researcher", &SystemClock, &mut FastIds, |ev| {
        let mut v = Vec::new();
        ossa_events::format::json::write_json(ev, &mut v)
            .map(|()| lines.push(String::from_utf8(v).unwrap()))
    })
    .unwrap();
    lines
}

fn by_span(spans: &[Span]) -> HashMap<String, &Span> {
    let m: HashMap<String, &Span> = spans.iter().map(|s| (hex(&s.span_id), s)).collect();
    assert_eq!(m.len(), spans.len(), "a span id went out twice");
    m
}

#[test]
fn the_demo_run_is_one_span_tree_with_genai_attributes() {
    let lines = demo_lines();
    let evs = read(&lines);
    let (spans, m, c) = export(&lines, vec![]);
    assert_eq!((m.delivered, m.failed), (demo::EVENT_COUNT as u64, 0));
    assert_eq!((c.spans, c.unfinished, c.span_events, c.lost), (7, 0, 1, 0));
    let spans = by_span(&spans);
    assert_eq!(spans.len(), 7);
    let trace = &evs[0].trace;
    for s in spans.values() {
        assert_eq!(&hex(&s.trace_id), trace);
        assert_eq!(s.kind, 1, "INTERNAL");
    }
    // Each span: the started event's span id, its time to the end event's.
    let span_of = |ty: &str, nth: usize| -> &Span {
        let e = evs.iter().filter(|e| e.ty == ty).nth(nth).unwrap();
        let s = spans[&e.span];
        assert_eq!(s.start_time_unix_nano, e.time_ns, "{ty} start");
        assert_eq!(
            str_attr(&s.attributes, "cloudevents.event_id"),
            Some(e.id.clone())
        );
        s
    };
    let end_of = |ty: &str, nth: usize| evs.iter().filter(|e| e.ty == ty).nth(nth).unwrap().clone();
    let wf = span_of(ossa::WORKFLOW_STARTED, 0);
    let agent = span_of(ossa::AGENT_STARTED, 0);
    let turns = [
        span_of(ossa::TURN_STARTED, 0),
        span_of(ossa::TURN_STARTED, 1),
    ];
    let tools = [
        span_of(ossa::TOOL_CALLED, 0),
        span_of(ossa::TOOL_CALLED, 1),
        span_of(ossa::TOOL_CALLED, 2),
    ];
    assert!(wf.parent_span_id.is_empty(), "the workflow is the root");
    assert_eq!(agent.parent_span_id, wf.span_id);
    for t in &turns {
        assert_eq!(t.parent_span_id, agent.span_id);
    }
    assert_eq!(tools[0].parent_span_id, turns[0].span_id);
    assert_eq!(tools[1].parent_span_id, turns[0].span_id);
    assert_eq!(tools[2].parent_span_id, turns[1].span_id);
    // End times from the end events.
    assert_eq!(
        wf.end_time_unix_nano,
        end_of(ossa::WORKFLOW_COMPLETED, 0).time_ns
    );
    assert_eq!(
        agent.end_time_unix_nano,
        end_of(ossa::AGENT_COMPLETED, 0).time_ns
    );
    assert_eq!(
        turns[0].end_time_unix_nano,
        end_of(ossa::TURN_COMPLETED, 0).time_ns
    );
    assert_eq!(
        tools[1].end_time_unix_nano,
        end_of(ossa::TOOL_FAILED, 0).time_ns
    );
    assert_eq!(
        str_attr(&tools[1].attributes, "ossa.end_event_id"),
        Some(end_of(ossa::TOOL_FAILED, 0).id)
    );
    // Names, operations, GenAI attributes.
    let op = |s: &Span| str_attr(&s.attributes, "gen_ai.operation.name").unwrap();
    assert_eq!(
        (wf.name.as_str(), op(wf).as_str()),
        ("invoke_workflow research-report", "invoke_workflow")
    );
    assert_eq!(
        (agent.name.as_str(), op(agent).as_str()),
        ("invoke_agent Research Agent", "invoke_agent")
    );
    assert_eq!(
        (turns[0].name.as_str(), op(turns[0]).as_str()),
        ("chat", "chat")
    );
    assert_eq!(
        (tools[0].name.as_str(), op(tools[0]).as_str()),
        ("execute_tool web_search", "execute_tool")
    );
    assert_eq!(
        str_attr(&agent.attributes, "gen_ai.agent.name"),
        Some("Research Agent".into())
    );
    assert_eq!(
        str_attr(&agent.attributes, "gen_ai.agent.id"),
        Some("researcher".into())
    );
    assert_eq!(
        str_attr(&tools[2].attributes, "gen_ai.agent.id"),
        Some("researcher".into())
    );
    assert_eq!(
        str_attr(&tools[1].attributes, "gen_ai.tool.name"),
        Some("fetch_url".into())
    );
    assert_eq!(
        str_attr(&tools[1].attributes, "gen_ai.tool.call.id"),
        Some("call-2".into())
    );
    for s in spans.values() {
        assert_eq!(
            str_attr(&s.attributes, "gen_ai.conversation.id"),
            evs[0].interaction
        );
    }
    assert_eq!(
        int_attr(&turns[0].attributes, "gen_ai.usage.input_tokens"),
        Some(1812)
    );
    assert_eq!(
        int_attr(&turns[0].attributes, "gen_ai.usage.output_tokens"),
        Some(264)
    );
    assert_eq!(
        int_attr(&turns[1].attributes, "gen_ai.usage.input_tokens"),
        Some(2930)
    );
    // The failed tool call: status ERROR with its message and error.type.
    let st = tools[1].status.as_ref().unwrap();
    assert_eq!(
        (st.code, st.message.as_str()),
        (2, "upstream did not answer within 10 s")
    );
    assert_eq!(
        str_attr(&tools[1].attributes, "error.type"),
        Some("timeout".into())
    );
    for s in [wf, agent, turns[0], turns[1], tools[0], tools[2]] {
        assert!(
            s.status.as_ref().is_none_or(|st| st.code == 0),
            "{}",
            s.name
        );
        assert_eq!(str_attr(&s.attributes, "error.type"), None);
    }
    // state.updated: a span event on the first turn, at its time.
    let state = end_of(ossa::STATE_UPDATED, 0);
    assert_eq!(turns[0].events.len(), 1);
    let se = &turns[0].events[0];
    assert_eq!(
        (se.name.as_str(), se.time_unix_nano),
        (ossa::STATE_UPDATED, state.time_ns)
    );
    assert_eq!(
        str_attr(&se.attributes, "cloudevents.event_id"),
        Some(state.id)
    );
    assert_eq!(
        str_attr(&se.attributes, "ossa.state.key"),
        Some("sources".into())
    );
}

/// The firmware example's run (examples/firmware: the same ids, the agent id
/// on every event, the workflow's included; the tool call fails). The
/// firmware writes no `traceparent` (its core is built without that
/// feature): the tree comes from `ossatraceid` and `ossaspanid` alone.
#[test]
fn the_firmware_run_is_one_span_tree() {
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let steps: [(&str, &str); 8] = [
        (
            "00f067aa0ba902b7",
            r#"{"type":"dev.ossa.workflow.started","data":{"workflow_id":"wf-greenhouse-0001","name":"greenhouse-climate"}}"#,
        ),
        (
            "a3ce929d0e0e4736",
            r#"{"type":"dev.ossa.agent.started","data":{"agent_id":"thermo-agent","name":"Thermostat agent","version":"0.1.0"}}"#,
        ),
        (
            "53995c3f42cd8ad8",
            r#"{"type":"dev.ossa.turn.started","data":{"turn":1}}"#,
        ),
        (
            "1f2e3d4c5b6a7988",
            r#"{"type":"dev.ossa.tool.called","data":{"tool":"set_heater","call_id":"call-1"}}"#,
        ),
        (
            "1f2e3d4c5b6a7988",
            r#"{"type":"dev.ossa.tool.failed","data":{"tool":"set_heater","call_id":"call-1","error":{"message":"heater relay did not acknowledge within 1000 ms","code":"timeout","retryable":true}}}"#,
        ),
        (
            "53995c3f42cd8ad8",
            r#"{"type":"dev.ossa.turn.completed","data":{"turn":1,"usage":{"input_tokens":182,"output_tokens":41}}}"#,
        ),
        (
            "a3ce929d0e0e4736",
            r#"{"type":"dev.ossa.agent.completed","data":{"agent_id":"thermo-agent","status":"failed"}}"#,
        ),
        (
            "00f067aa0ba902b7",
            r#"{"type":"dev.ossa.workflow.completed","data":{"workflow_id":"wf-greenhouse-0001","status":"failed"}}"#,
        ),
    ];
    let lines: Vec<String> = steps
        .iter()
        .enumerate()
        .map(|(i, (span, body))| {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            serde_json::json!({
                "specversion": "1.0", "id": format!("fw-{i}"), "source": "/greenhouse/thermo",
                "type": v["type"], "time": format!("2026-01-01T00:00:0{i}.250Z"),
                "ossaagentid": "thermo-agent", "ossainteractionid": "int-7f3a",
                "ossatraceid": TRACE, "ossaspanid": span,
                "datacontenttype": "application/json", "data": v["data"],
            })
            .to_string()
        })
        .collect();
    let (spans, m, _) = export(&lines, vec![]);
    assert_eq!(m.delivered, 8);
    let spans = by_span(&spans);
    assert_eq!(spans.len(), 4);
    let id = |s: &str| {
        (0..8)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    let wf = spans["00f067aa0ba902b7"];
    let agent = spans["a3ce929d0e0e4736"];
    let turn = spans["53995c3f42cd8ad8"];
    let tool = spans["1f2e3d4c5b6a7988"];
    assert!(wf.parent_span_id.is_empty());
    assert_eq!(agent.parent_span_id, id("00f067aa0ba902b7"));
    assert_eq!(turn.parent_span_id, id("a3ce929d0e0e4736"));
    assert_eq!(tool.parent_span_id, id("53995c3f42cd8ad8"));
    assert_eq!(tool.status.as_ref().unwrap().code, 2);
    assert_eq!(
        str_attr(&tool.attributes, "error.type"),
        Some("timeout".into())
    );
    assert_eq!(
        str_attr(&agent.attributes, "ossa.status"),
        Some("failed".into())
    );
    assert_eq!(tool.start_time_unix_nano, 1_767_225_603_250_000_000);
    assert_eq!(tool.end_time_unix_nano, 1_767_225_604_250_000_000);
    assert_eq!(wf.name, "invoke_workflow greenhouse-climate");
    assert_eq!(
        str_attr(&wf.attributes, "gen_ai.agent.id"),
        None,
        "a workflow is not an agent"
    );
}

#[test]
fn a_503_is_retried_and_every_span_goes_out_once() {
    let lines = demo_lines();
    // The first two requests are refused with 503 + Retry-After: 0.
    let (spans, m, c) = export(&lines, vec![503, 503]);
    assert_eq!((m.delivered, m.failed), (demo::EVENT_COUNT as u64, 0));
    assert!(m.retried > 0, "{m:?}");
    assert!(c.requests_failed >= 2, "{c:?}");
    let spans = by_span(&spans);
    assert_eq!(spans.len(), 7);
    // Nothing went out unfinished: the retried ends closed their spans again.
    assert_eq!((c.unfinished, c.lost), (0, 0));
    let tools: Vec<&&Span> = spans
        .values()
        .filter(|s| s.name.starts_with("execute_tool"))
        .collect();
    assert_eq!(tools.len(), 3);
    assert!(tools.iter().all(|t| !t.parent_span_id.is_empty()));
}

#[test]
fn a_400_fails_the_end_events_and_counts_the_spans_lost() {
    let lines = demo_lines();
    // Every request refused for good.
    let (spans, m, c) = export(&lines, vec![400; 8]);
    assert!(spans.is_empty());
    // Started events and the state update were held (delivered); the
    // seven end events failed with the 400, not retried.
    assert_eq!((m.delivered, m.failed, m.retried), (8, 7, 0));
    assert_eq!((c.spans, c.lost, c.open), (0, 7, 0));
}

#[test]
fn spans_open_at_shutdown_go_out_unfinished_with_a_reason() {
    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    let (addr, seen) = collector(vec![]);
    let sink = OtlpSink::builder(format!("http://{addr}/"))
        .build()
        .unwrap();
    let stats = sink.stats();
    let emitter = Emitter::builder("/agents/a").sink(sink).build().unwrap();
    let wf = ossa::WorkflowStarted {
        workflow_id: "wf-1",
        ..Default::default()
    };
    let agent = ossa::AgentStarted {
        agent_id: "a",
        ..Default::default()
    };
    let tool = ossa::ToolCalled {
        tool: "search",
        call_id: Some("c1"),
        ..Default::default()
    };
    emitter
        .emit(
            EventBuilder::new()
                .ossa(&wf)
                .ossa_trace_id(TRACE)
                .ossa_span_id("00000000000000a1"),
        )
        .unwrap();
    emitter
        .emit(
            EventBuilder::new()
                .ossa(&agent)
                .ossa_agent_id("a")
                .ossa_trace_id(TRACE)
                .ossa_span_id("00000000000000a2"),
        )
        .unwrap();
    emitter
        .emit(
            EventBuilder::new()
                .ossa(&tool)
                .ossa_agent_id("a")
                .ossa_trace_id(TRACE)
                .ossa_span_id("00000000000000a3"),
        )
        .unwrap();
    let report = emitter.shutdown().unwrap();
    assert_eq!(report.delivered, 3);
    let c = stats.get();
    assert_eq!((c.spans, c.unfinished, c.lost, c.open), (3, 3, 0, 0));
    let spans = accepted_spans(&seen);
    let spans = by_span(&spans);
    assert_eq!(spans.len(), 3);
    for s in spans.values() {
        let why = str_attr(&s.attributes, "ossa.span.unfinished").unwrap();
        assert!(why.starts_with("shutdown"), "{why}");
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano);
    }
    assert_eq!(
        spans["00000000000000a3"].parent_span_id,
        spans["00000000000000a2"].span_id
    );
    assert_eq!(
        spans["00000000000000a2"].parent_span_id,
        spans["00000000000000a1"].span_id
    );
    assert_eq!(spans["00000000000000a3"].name, "execute_tool search");
}

/// A span made from an end event alone (no started event) went out under
/// the span id the event carries; when its request got a 503, the retried
/// end found that id "already exported" (the refused request's span was
/// remembered) and went out under a derived one. Had the refused request
/// in fact reached the collector (an answer lost on the way), the collector
/// would hold the operation twice under two ids; and a span naming the
/// carried id as its parent points at nothing.
#[test]
fn a_retried_end_without_its_start_keeps_the_span_id_it_carries() {
    let line = r#"{"specversion":"1.0","id":"e1","source":"/s","type":"dev.ossa.tool.completed","time":"2026-01-01T00:00:05Z","ossatraceid":"4bf92f3577b34da6a3ce929d0e0e4736","ossaspanid":"00000000000000c1","ossaagentid":"a","data":{"tool":"x","call_id":"c","duration_ms":1000}}"#;
    let (spans, m, _) = export(&[line.to_owned()], vec![]);
    assert_eq!(spans.len(), 1);
    assert_eq!(hex(&spans[0].span_id), "00000000000000c1");
    let (spans, m2, _) = export(&[line.to_owned()], vec![503]);
    assert_eq!((m.delivered, m2.delivered, m2.failed), (1, 1, 0));
    assert!(m2.retried > 0, "{m2:?}");
    assert_eq!(spans.len(), 1);
    assert_eq!(hex(&spans[0].span_id), "00000000000000c1");
}
