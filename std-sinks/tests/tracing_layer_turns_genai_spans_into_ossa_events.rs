//! `OssaLayer` under a real `tracing_subscriber::Registry`: spans shaped as
//! rig writes them, entered and exited many times on a tokio runtime;
//! failures; operation names; the interaction id; spans never entered; a
//! full queue; and `context_from_tracing`.
//!
//! The rig shapes are copied from rig's sources (github.com/0xPlaygrounds/rig
//! at v0.42.0, the snapshot read for this test):
//!
//! - `invoke_agent`: `crates/rig-agent/src/agent/runner.rs`,
//!   `acquire_agent_span`; `gen_ai.prompt` recorded by `open_agent_span`
//!   before the span is entered; `gen_ai.completion` and the usage recorded
//!   on it when the run is done (`record_run_level_telemetry`).
//! - `chat`: the same file's `build_chat_span!` over rig-core's
//!   `completion_parent_span!` (`crates/rig-core/src/telemetry/mod.rs`,
//!   `__rig_canonical_completion_span!`): target `rig::agent_chat`, the
//!   provider, model and usage declared `Empty` and recorded by the provider
//!   while the request runs.
//! - `execute_tool`: the same file's `new_execute_tool_span`, every
//!   `gen_ai.tool.*` field but the type `Empty`; `run_single_tool` records the
//!   name, call id and arguments on `Span::current()` right after entering,
//!   then the outcome, the error type (on failure) and the result.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ossa_events::sink::WriterSink;
use ossa_events::tracing_layer::{OssaLayer, current_span_ids};
use ossa_events::{Emitter, EmitterBuilder, EventBuilder, ossa};
use serde_json::Value;
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_subscriber::layer::SubscriberExt as _;

use common::Captured as Shared;

fn emitter_with(out: &Shared, f: impl FnOnce(EmitterBuilder) -> EmitterBuilder) -> Emitter {
    f(Emitter::builder("/agents/rig-test").sink(WriterSink::new(out.clone())))
        .build()
        .unwrap()
}

/// Runs `f` under a registry with an `OssaLayer` on `emitter`, then flushes.
fn traced<T>(emitter: &Emitter, f: impl FnOnce() -> T) -> T {
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(emitter.clone()));
    let out = tracing::subscriber::with_default(subscriber, f);
    emitter.flush().unwrap();
    out
}

fn ty(e: &Value) -> &str {
    e["type"].as_str().unwrap()
}
fn ext<'a>(e: &'a Value, name: &str) -> Option<&'a str> {
    e[name].as_str()
}

// ---------------------------------------------------------------------------
// rig's span shapes

fn rig_agent_span(agent_name: &str) -> tracing::Span {
    let system_instructions: Option<&str> = None;
    tracing::info_span!(
        "invoke_agent",
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = agent_name,
        gen_ai.system_instructions = system_instructions,
        gen_ai.prompt = Empty,
        gen_ai.completion = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.usage.cache_read.input_tokens = Empty,
        gen_ai.usage.cache_creation.input_tokens = Empty,
        gen_ai.usage.tool_use_prompt_tokens = Empty,
        gen_ai.usage.reasoning_tokens = Empty,
    )
}

fn rig_chat_span(agent_name: &str) -> tracing::Span {
    let system: Option<&str> = None;
    tracing::info_span!(
        target: "rig::agent_chat",
        parent: tracing::Span::current(),
        "chat",
        rig.completion_parent = true,
        gen_ai.operation.name = "chat",
        gen_ai.system_instructions = system,
        gen_ai.provider.name = Empty,
        gen_ai.request.model = Empty,
        gen_ai.response.id = Empty,
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.usage.cache_read.input_tokens = Empty,
        gen_ai.usage.cache_creation.input_tokens = Empty,
        gen_ai.usage.tool_use_prompt_tokens = Empty,
        gen_ai.usage.reasoning_tokens = Empty,
        gen_ai.input.messages = Empty,
        gen_ai.output.messages = Empty,
        gen_ai.agent.name = agent_name,
    )
}

fn rig_tool_span() -> tracing::Span {
    tracing::info_span!(
        "execute_tool",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.type = "function",
        gen_ai.tool.name = Empty,
        gen_ai.tool.call.id = Empty,
        gen_ai.tool.call.arguments = Empty,
        gen_ai.tool.call.result = Empty,
        gen_ai.tool.call.outcome = Empty,
        gen_ai.tool.error.type = Empty
    )
}

/// A scripted completion: the provider's part of a turn, yielding to the
/// runtime a few times (each yield exits and re-enters the chat span).
async fn model_turn(input_tokens: u64, output_tokens: u64) {
    let span = tracing::Span::current();
    span.record("gen_ai.provider.name", "scripted");
    span.record("gen_ai.request.model", "scripted-1");
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    span.record("gen_ai.response.id", "resp-1");
    span.record("gen_ai.usage.input_tokens", input_tokens);
    span.record("gen_ai.usage.output_tokens", output_tokens);
}

/// rig's `run_single_tool`, for a tool that succeeds or fails.
async fn run_single_tool(call_id: &str, fail: bool) {
    let tool_span = tracing::Span::current();
    tool_span.record("gen_ai.tool.name", "web_search");
    tool_span.record("gen_ai.tool.call.id", call_id);
    tool_span.record("gen_ai.tool.call.arguments", r#"{"query":"ossa"}"#);
    for _ in 0..5 {
        tokio::task::yield_now().await; // the tool's I/O
    }
    if fail {
        tool_span.record("gen_ai.tool.call.outcome", "error");
        tool_span.record("gen_ai.tool.error.type", "tool_call_error");
    } else {
        tool_span.record("gen_ai.tool.call.outcome", "success");
        tool_span.record("gen_ai.tool.call.result", "3 results for ossa");
    }
}

/// An agent run as rig's blocking driver makes it: a turn that calls a
/// tool, then a turn with the final answer.
async fn rig_run(agent_name: &str, fail_tool: bool) {
    let agent = rig_agent_span(agent_name);
    agent.record("gen_ai.prompt", "find ossa");
    async {
        model_turn(120, 18)
            .instrument(rig_chat_span(agent_name))
            .await;
        run_single_tool("call-1", fail_tool)
            .instrument(rig_tool_span())
            .await;
        model_turn(160, 42)
            .instrument(rig_chat_span(agent_name))
            .await;
        let span = tracing::Span::current();
        span.record("gen_ai.completion", "OSSA is a standard for agents");
        span.record("gen_ai.usage.input_tokens", 280u64);
        span.record("gen_ai.usage.output_tokens", 60u64);
    }
    .instrument(agent)
    .await;
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn a_rig_agent_run_becomes_one_trace_of_ossa_events() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    traced(&emitter, || block_on(rig_run("researcher", false)));
    let events = out.events();
    let types: Vec<&str> = events.iter().map(ty).collect();
    assert_eq!(
        types,
        [
            ossa::AGENT_STARTED,
            ossa::TURN_STARTED,
            ossa::TURN_COMPLETED,
            ossa::TOOL_CALLED,
            ossa::TOOL_COMPLETED,
            ossa::TURN_STARTED,
            ossa::TURN_COMPLETED,
            ossa::AGENT_COMPLETED,
        ]
    );
    // One trace; a span id per span, the same on its start and end.
    let trace = ext(&events[0], "ossatraceid").unwrap();
    assert_eq!(trace.len(), 32);
    for e in &events {
        assert_eq!(ext(e, "ossatraceid"), Some(trace));
        assert_eq!(ext(e, "ossaagentid"), Some("researcher"));
        let span = ext(e, "ossaspanid").unwrap();
        assert_eq!(
            ext(e, "traceparent").unwrap(),
            format!("00-{trace}-{span}-01")
        );
    }
    let span_of = |i: usize| ext(&events[i], "ossaspanid").unwrap();
    assert_eq!(span_of(0), span_of(7));
    assert_eq!(span_of(1), span_of(2));
    assert_eq!(span_of(3), span_of(4));
    assert_eq!(span_of(5), span_of(6));
    let mut spans = vec![span_of(0), span_of(1), span_of(3), span_of(5)];
    spans.dedup();
    assert_eq!(spans.len(), 4);

    // Fields set at creation and recorded late.
    assert_eq!(events[0]["data"]["agent_id"], "researcher");
    assert_eq!(events[0]["data"]["input"], "find ossa");
    assert_eq!(events[1]["data"]["turn"], 1);
    assert_eq!(
        events[2]["data"]["usage"],
        serde_json::json!({"input_tokens": 120, "output_tokens": 18})
    );
    assert_eq!(events[3]["subject"], "web_search");
    assert_eq!(events[3]["data"]["call_id"], "call-1");
    assert_eq!(
        events[3]["data"]["arguments"],
        serde_json::json!({"query": "ossa"})
    );
    assert_eq!(events[4]["data"]["result"], "3 results for ossa");
    assert_eq!(events[5]["data"]["turn"], 2);
    assert_eq!(events[6]["data"]["usage"]["output_tokens"], 42);
    assert_eq!(events[7]["data"]["status"], "success");
    assert_eq!(events[7]["data"]["output"], "OSSA is a standard for agents");
    assert!(events[7]["data"]["duration_ms"].is_u64());
    let m = emitter.metrics();
    assert_eq!(
        (m.emitted, m.delivered, m.rejected, m.dropped),
        (8, 8, 0, 0)
    );
}

#[test]
fn concurrent_runs_on_a_runtime_stay_apart() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    traced(&emitter, || {
        block_on(async {
            let runs = (0..8).map(|i| {
                let name = format!("agent-{i}");
                async move { rig_run(&name, i % 2 == 1).await }
            });
            futures_join_all(runs).await;
        })
    });
    let events = out.events();
    assert_eq!(events.len(), 8 * 8);
    for i in 0..8 {
        let name = format!("agent-{i}");
        let mine: Vec<&Value> = events
            .iter()
            .filter(|e| ext(e, "ossaagentid") == Some(name.as_str()))
            .collect();
        assert_eq!(mine.len(), 8, "{name}");
        let trace = ext(mine[0], "ossatraceid");
        assert!(mine.iter().all(|e| ext(e, "ossatraceid") == trace));
        let tool_end = if i % 2 == 1 {
            ossa::TOOL_FAILED
        } else {
            ossa::TOOL_COMPLETED
        };
        assert!(mine.iter().any(|e| ty(e) == tool_end), "{name}");
        let turns: Vec<u64> = mine
            .iter()
            .filter(|e| ty(e) == ossa::TURN_STARTED)
            .map(|e| e["data"]["turn"].as_u64().unwrap())
            .collect();
        assert_eq!(turns, [1, 2]);
    }
    let traces: std::collections::HashSet<&str> = events
        .iter()
        .map(|e| ext(e, "ossatraceid").unwrap())
        .collect();
    assert_eq!(traces.len(), 8);
}

/// Polls every future on one task until all are done (interleaving them).
async fn futures_join_all<F: std::future::Future<Output = ()> + 'static>(
    futs: impl Iterator<Item = F>,
) {
    let set = tokio::task::LocalSet::new();
    for f in futs {
        set.spawn_local(f);
    }
    set.await;
}

#[test]
fn failures_come_from_error_fields_and_error_events() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    traced(&emitter, || {
        block_on(rig_run("flaky", true));
        let agent = tracing::info_span!("invoke_agent", gen_ai.agent.id = "a-9");
        agent.in_scope(|| tracing::error!("model refused: quota exceeded"));
        drop(agent);
        let wf = tracing::info_span!(
            "invoke_workflow",
            gen_ai.workflow.name = "nightly",
            error.type = Empty
        );
        wf.in_scope(|| {});
        wf.record("error.type", "timeout");
        drop(wf);
        // An ERROR event in a plain span inside a tool span fails the tool.
        let tool = tracing::info_span!("execute_tool fetch", gen_ai.tool.name = "fetch");
        tool.in_scope(|| {
            tracing::info_span!("http").in_scope(|| tracing::error!("connection reset"))
        });
        drop(tool);
    });
    let events = out.events();
    let tool_failed = events.iter().find(|e| ty(e) == ossa::TOOL_FAILED).unwrap();
    assert_eq!(tool_failed["data"]["error"]["code"], "tool_call_error");
    assert_eq!(tool_failed["data"]["call_id"], "call-1");
    let agent_failed = events.iter().find(|e| ty(e) == ossa::AGENT_FAILED).unwrap();
    assert_eq!(agent_failed["data"]["agent_id"], "a-9");
    assert_eq!(
        agent_failed["data"]["error"]["message"],
        "model refused: quota exceeded"
    );
    let wf = events
        .iter()
        .find(|e| ty(e) == ossa::WORKFLOW_COMPLETED)
        .unwrap();
    assert_eq!(wf["data"]["status"], "failed");
    let fetch = events
        .iter()
        .filter(|e| ty(e) == ossa::TOOL_FAILED)
        .find(|e| e["subject"] == "fetch")
        .unwrap();
    assert_eq!(fetch["data"]["error"]["message"], "connection reset");
    // The failed tool did not fail its agent: rig's run still completed.
    assert!(events.iter().any(|e| ty(e) == ossa::AGENT_COMPLETED));
}

#[test]
fn the_operation_name_field_wins_over_the_span_name_even_when_recorded_late() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    traced(&emitter, || {
        // rig's streaming surface: span `chat_streaming`, operation `chat`.
        tracing::info_span!("chat_streaming", gen_ai.operation.name = "chat").in_scope(|| {});
        // An adopted span whose operation is recorded after its creation
        // (rig-core's `CompletionSpanBuilder`), before its first enter.
        let adopted = tracing::info_span!("agent_chat", gen_ai.operation.name = Empty);
        adopted.record("gen_ai.operation.name", "chat");
        adopted.in_scope(|| {});
        drop(adopted);
        // Neither a GenAI name nor a known operation: nothing.
        tracing::info_span!("embed", gen_ai.operation.name = "embeddings").in_scope(|| {});
        tracing::info_span!("handle_request").in_scope(|| {});
    });
    let types: Vec<String> = out.events().iter().map(|e| ty(e).to_owned()).collect();
    assert_eq!(
        types,
        [
            ossa::TURN_STARTED,
            ossa::TURN_COMPLETED,
            ossa::TURN_STARTED,
            ossa::TURN_COMPLETED
        ]
    );
}

/// What a span's start event said of its operation and agent, its end
/// event says too: fields recorded after the start change neither (a
/// helper review saw `agent.started` for "researcher" end as
/// `agent.completed` for "agent-42", and `turn.started` end as
/// `tool.completed`: ends that pair with no start).
#[test]
fn the_operation_and_agent_of_a_started_span_stay_what_its_start_said() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    traced(&emitter, || {
        let agent = tracing::info_span!(
            "invoke_agent",
            gen_ai.agent.name = "researcher",
            gen_ai.agent.id = Empty
        );
        agent.in_scope(|| {
            tracing::Span::current().record("gen_ai.agent.id", "agent-42");
            let chat = tracing::info_span!("chat", gen_ai.operation.name = Empty);
            chat.in_scope(|| {});
            chat.record("gen_ai.operation.name", "execute_tool");
        });
    });
    let evs = out.events();
    let types: Vec<&str> = evs.iter().map(ty).collect();
    assert_eq!(
        types,
        [
            ossa::AGENT_STARTED,
            ossa::TURN_STARTED,
            ossa::TURN_COMPLETED,
            ossa::AGENT_COMPLETED
        ]
    );
    for e in &evs {
        assert_eq!(ext(e, "ossaagentid"), Some("researcher"), "{e}");
    }
    assert_eq!(evs[0]["data"]["agent_id"], evs[3]["data"]["agent_id"]);
}

#[test]
fn the_conversation_id_is_the_interaction_of_every_span_in_it() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b.interaction_id("configured"));
    traced(&emitter, || {
        let wf = tracing::info_span!("invoke_workflow", gen_ai.conversation.id = "conv-7");
        let _w = wf.enter();
        let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = "planner");
        let _a = agent.enter();
        tracing::info_span!("execute_tool", gen_ai.tool.name = "calc").in_scope(|| {});
    });
    let events = out.events();
    assert_eq!(events.len(), 6);
    for e in &events {
        assert_eq!(ext(e, "ossainteractionid"), Some("conv-7"));
    }
    // The workflow is outside the agent: no agent id but the configured one.
    assert_eq!(ext(&events[0], "ossaagentid"), None);
    assert_eq!(ext(&events[2], "ossaagentid"), Some("planner"));
}

#[test]
fn a_span_never_entered_emits_nothing_and_one_entered_twice_starts_once() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    traced(&emitter, || {
        drop(tracing::info_span!(
            "invoke_agent",
            gen_ai.agent.name = "idle"
        ));
        let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = "busy");
        let outer = agent.enter();
        agent.in_scope(|| agent.in_scope(|| {})); // nested enters of the same span
        drop(outer);
        agent.in_scope(|| {});
    });
    let events = out.events();
    let types: Vec<&str> = events.iter().map(ty).collect();
    assert_eq!(types, [ossa::AGENT_STARTED, ossa::AGENT_COMPLETED]);
    assert_eq!(events[0]["subject"], "busy");
}

#[test]
fn a_full_queue_drops_counted_events_and_the_program_goes_on() {
    /// Writes to `out` once the test lets go of `gate`: a queue at its
    /// capacity is sent at once, and without the gate that send could end
    /// (freeing the places) before the spans below are done.
    struct Gated {
        out: Shared,
        gate: Arc<Mutex<()>>,
    }
    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _open = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            self.out.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let out = Shared::default();
    let gate = Arc::new(Mutex::new(()));
    let reported = Arc::new(Mutex::new(Vec::new()));
    let emitter = Emitter::builder("/agents/rig-test")
        .sink(WriterSink::new(Gated {
            out: out.clone(),
            gate: gate.clone(),
        }))
        .queue_capacity(3)
        .batch_size(1_000)
        .flush_interval(Duration::from_secs(60))
        .on_undelivered({
            let reported = reported.clone();
            move |u| reported.lock().unwrap().push((u.reason, u.id.to_owned()))
        })
        .build()
        .unwrap();
    let closed = gate.lock().unwrap();
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(emitter.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..5 {
            tracing::info_span!(
                "execute_tool",
                gen_ai.tool.name = "t",
                gen_ai.tool.call.id = i
            )
            .in_scope(|| {});
        }
    });
    drop(closed);
    let report = emitter.flush().unwrap();
    // How many get in depends on when the worker drains what the layer put
    // off (the queue's 3 places, and up to 3 more waiting to be built while
    // the sink is held): not all 10, not fewer than the queue holds.
    let m = emitter.metrics();
    assert!((3..10).contains(&m.emitted), "{m:?}");
    assert_eq!(m.emitted + m.dropped, 10, "{m:?}");
    assert_eq!(report.delivered, m.emitted);
    let delivered = out.events();
    assert_eq!(delivered.len() as u64, m.emitted);
    // Each dropped event is reported once, under an id no delivered event has.
    let reported = reported.lock().unwrap();
    assert_eq!(reported.len() as u64, m.dropped);
    let mut ids: Vec<&str> = delivered
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    for (reason, id) in reported.iter() {
        assert_eq!(*reason, ossa_events::Reason::Dropped);
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10, "{ids:?}");
}

#[test]
fn context_from_tracing_puts_the_current_span_ids_on_events() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b.context_from_tracing(true));
    let inside = traced(&emitter, || {
        emitter
            .emit(EventBuilder::new().ty("dev.example.outside"))
            .unwrap();
        assert_eq!(current_span_ids(), None);
        let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = "a");
        let ids = agent.in_scope(|| {
            emitter
                .emit(EventBuilder::new().ty("dev.example.in_agent"))
                .unwrap();
            // In a plain span inside it: still the agent span's ids.
            tracing::info_span!("parse").in_scope(|| {
                emitter
                    .emit(EventBuilder::new().ty("dev.example.in_plain"))
                    .unwrap();
            });
            // An event with its own ids keeps them.
            emitter
                .emit(
                    EventBuilder::new()
                        .ty("dev.example.own")
                        .ossa_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
                        .ossa_span_id("00f067aa0ba902b7"),
                )
                .unwrap();
            current_span_ids().unwrap()
        });
        // Outside a span, on another thread too: nothing.
        let other = emitter.clone();
        std::thread::spawn(move || other.emit(EventBuilder::new().ty("dev.example.thread")))
            .join()
            .unwrap()
            .unwrap();
        ids
    });
    let events = out.events();
    let by_type = |t: &str| events.iter().find(|e| ty(e) == t).unwrap();
    for t in ["dev.example.outside", "dev.example.thread"] {
        let e = by_type(t);
        assert_eq!(ext(e, "ossatraceid"), None, "{t}");
        assert_eq!(ext(e, "traceparent"), None, "{t}");
    }
    let started = by_type(ossa::AGENT_STARTED);
    for t in ["dev.example.in_agent", "dev.example.in_plain"] {
        let e = by_type(t);
        assert_eq!(ext(e, "ossatraceid"), Some(inside.trace_id()), "{t}");
        assert_eq!(ext(e, "ossaspanid"), Some(inside.span_id()), "{t}");
        assert_eq!(ext(e, "ossaspanid"), ext(started, "ossaspanid"));
        assert_eq!(
            ext(e, "traceparent").unwrap(),
            format!("00-{}-{}-01", inside.trace_id(), inside.span_id())
        );
    }
    let own = by_type("dev.example.own");
    assert_eq!(ext(own, "ossaspanid"), Some("00f067aa0ba902b7"));
}

#[test]
fn context_from_tracing_is_off_by_default() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    traced(&emitter, || {
        tracing::info_span!("invoke_agent", gen_ai.agent.name = "a").in_scope(|| {
            emitter
                .emit(EventBuilder::new().ty("dev.example.note"))
                .unwrap();
        })
    });
    let events = out.events();
    let note = events.iter().find(|e| ty(e) == "dev.example.note").unwrap();
    assert_eq!(ext(note, "ossatraceid"), None);
}

#[test]
fn numbers_where_text_is_read_become_text() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    traced(&emitter, || {
        tracing::info_span!(
            "execute_tool",
            gen_ai.tool.name = "t",
            gen_ai.tool.call.id = 42u64
        )
        .in_scope(|| {});
        tracing::info_span!(
            "execute_tool",
            gen_ai.tool.name = "t",
            gen_ai.tool.call.id = -7i64
        )
        .in_scope(|| {});
    });
    let events = out.events();
    assert_eq!(events[0]["data"]["call_id"], "42");
    assert_eq!(events[2]["data"]["call_id"], "-7");
}

#[test]
fn odd_field_values_are_escaped_or_counted_never_a_panic() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    traced(&emitter, || {
        // Arguments that are not JSON go as a JSON string; control
        // characters in a name, which CloudEvents refuses in `subject`,
        // become U+FFFD there.
        let tool = tracing::info_span!(
            "execute_tool",
            gen_ai.tool.name = "web\u{0}search",
            gen_ai.tool.call.arguments = "{not json",
            gen_ai.tool.call.result = Empty
        );
        tool.in_scope(|| {});
        tool.record("gen_ai.tool.call.result", "\u{1}\"quoted\"\\");
        drop(tool);
        let ok = tracing::info_span!(
            "execute_tool",
            gen_ai.tool.name = "fine",
            gen_ai.tool.call.arguments = "{not json"
        );
        ok.in_scope(|| {});
    });
    let events = out.events();
    let m = emitter.metrics();
    // The tool with a NUL in its name goes out too, its name cleaned.
    assert_eq!((m.rejected, m.emitted), (0, 4), "{m:?}");
    assert_eq!(events.len(), 4);
    let nul = events
        .iter()
        .find(|e| ty(e) == ossa::TOOL_CALLED && e["subject"] == "web\u{fffd}search")
        .unwrap();
    // The data keeps the name as it was (JSON escapes the NUL).
    assert_eq!(nul["data"]["tool"], "web\u{0}search");
    let called = events
        .iter()
        .find(|e| ty(e) == ossa::TOOL_CALLED && e["subject"] == "fine")
        .unwrap();
    assert_eq!(called["data"]["arguments"], "{not json");
}

/// A tool span entered before it knows its tool (as rig's is) is started at
/// its first exit; a GenAI span inside it that starts before that exit (an
/// agent used as a tool, run in the tool's first poll) still comes after
/// the tool's `tool.called`, and so does its end.
#[test]
fn a_span_inside_a_tool_span_not_yet_started_comes_after_its_start() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    traced(&emitter, || {
        let agent = rig_agent_span("outer");
        let _a = agent.enter();
        let tool = rig_tool_span();
        tool.in_scope(|| {
            let span = tracing::Span::current();
            span.record("gen_ai.tool.name", "ask_inner");
            span.record("gen_ai.tool.call.id", "c1");
            // The tool is an agent: its run starts and ends in this poll.
            let inner = rig_agent_span("inner");
            inner.in_scope(|| {});
        });
        drop(tool);
    });
    let events = out.events();
    let types: Vec<&str> = events.iter().map(ty).collect();
    assert_eq!(
        types,
        [
            ossa::AGENT_STARTED,
            ossa::TOOL_CALLED,
            ossa::AGENT_STARTED,
            ossa::AGENT_COMPLETED,
            ossa::TOOL_COMPLETED,
            ossa::AGENT_COMPLETED,
        ],
        "{events:#?}"
    );
    assert_eq!(events[1]["subject"], "ask_inner");
    assert_eq!(events[1]["data"]["call_id"], "c1");
    let agents: Vec<Option<&str>> = events.iter().map(|e| ext(e, "ossaagentid")).collect();
    let (outer, inner) = (Some("outer"), Some("inner"));
    assert_eq!(agents, [outer, outer, inner, inner, outer, outer]);
    // The inner agent's spans are in the tool's trace.
    assert!(
        events
            .iter()
            .all(|e| e["ossatraceid"] == events[0]["ossatraceid"])
    );
}

/// A span started inside a GenAI span that has not started (made, never
/// entered) takes the agent of the span around that one.
#[test]
fn a_span_inside_a_span_not_started_takes_the_agent_around_it() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    traced(&emitter, || {
        let agent = rig_agent_span("outer");
        let _a = agent.enter();
        let tool = tracing::info_span!("execute_tool", gen_ai.tool.name = "t");
        tracing::info_span!(parent: &tool, "chat").in_scope(|| {});
    });
    let events = out.events();
    assert_eq!(events.len(), 4, "{events:#?}");
    assert!(
        events
            .iter()
            .all(|e| ext(e, "ossaagentid") == Some("outer")),
        "{events:#?}"
    );
}

/// What a span takes from the GenAI span around it (`ossaagentid`,
/// `ossainteractionid`) is what that span says when the inner one starts,
/// not when it was created: an agent span whose name and conversation are
/// recorded after a span was made inside it still gives them to that
/// span's events.
#[test]
fn a_span_made_before_its_agent_records_its_name_still_gets_it() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    traced(&emitter, || {
        let agent = tracing::info_span!(
            "invoke_agent",
            gen_ai.agent.name = Empty,
            gen_ai.conversation.id = Empty
        );
        let turn = tracing::info_span!(parent: &agent, "chat");
        agent.record("gen_ai.agent.name", "researcher");
        agent.record("gen_ai.conversation.id", "conv-1");
        agent.in_scope(|| turn.in_scope(|| {}));
        drop(turn);
    });
    let events = out.events();
    assert_eq!(events.len(), 4, "{events:#?}");
    for e in &events {
        assert_eq!(ext(e, "ossaagentid"), Some("researcher"), "{e:#?}");
        assert_eq!(ext(e, "ossainteractionid"), Some("conv-1"), "{e:#?}");
    }
}

/// An event emitted inside a tool span entered before it knew its tool
/// (rig's tool code runs in the span's first poll) comes after the tool's
/// `tool.called`, as one emitted inside any span comes after its start.
#[test]
fn an_event_emitted_inside_a_tool_span_not_yet_started_comes_after_its_start() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b.context_from_tracing(true));
    traced(&emitter, || {
        let tool = rig_tool_span();
        tool.in_scope(|| {
            tracing::Span::current().record("gen_ai.tool.name", "web_search");
            emitter
                .emit(EventBuilder::new().ty("dev.example.note"))
                .unwrap();
        });
    });
    let events = out.events();
    let types: Vec<&str> = events.iter().map(ty).collect();
    assert_eq!(
        types,
        [ossa::TOOL_CALLED, "dev.example.note", ossa::TOOL_COMPLETED],
        "{events:#?}"
    );
    assert_eq!(events[0]["subject"], "web_search");
    assert_eq!(events[1]["ossaspanid"], events[0]["ossaspanid"]);
}

/// A span that becomes an agent by a `gen_ai.operation.name` recorded
/// after it was created, before it starts, numbers its turns 1, 2, … as
/// any agent does.
#[test]
fn an_agent_by_a_late_operation_name_numbers_its_turns() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    traced(&emitter, || {
        let agent = tracing::info_span!(
            "run",
            gen_ai.operation.name = Empty,
            gen_ai.agent.name = "planner"
        );
        agent.record("gen_ai.operation.name", "invoke_agent");
        agent.in_scope(|| {
            tracing::info_span!("chat").in_scope(|| {});
            tracing::info_span!("chat").in_scope(|| {});
        });
    });
    let turns: Vec<u64> = out
        .events()
        .iter()
        .filter(|e| ty(e) == ossa::TURN_STARTED)
        .map(|e| e["data"]["turn"].as_u64().unwrap())
        .collect();
    assert_eq!(turns, [1, 2]);
}

/// A tool span whose tool name is recorded only after its first exit (an
/// async tool that records it after an `.await`: `.instrument` enters and
/// exits the span on every poll) still says its tool in `tool.called`,
/// with its call id and arguments, dated when the call began (its first
/// enter, before an event emitted between the two polls), and before its
/// `tool.completed`.
#[test]
fn a_tool_name_recorded_after_the_first_exit_is_in_tool_called() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    traced(&emitter, || {
        block_on(async {
            let agent = rig_agent_span("researcher");
            async {
                let tool = async {
                    tokio::task::yield_now().await; // first poll ends: exit, no name yet
                    let span = tracing::Span::current();
                    span.record("gen_ai.tool.name", "late_search");
                    span.record("gen_ai.tool.call.id", "c7");
                    span.record("gen_ai.tool.call.arguments", r#"{"q":1}"#);
                    tokio::task::yield_now().await;
                    span.record("gen_ai.tool.call.result", "found");
                }
                .instrument(rig_tool_span());
                // Between the tool's two polls, outside its span: an event
                // dated after the tool's first enter.
                let between = async {
                    std::thread::sleep(Duration::from_millis(2));
                    emitter
                        .emit(EventBuilder::new().ty("dev.example.between"))
                        .unwrap();
                };
                tokio::join!(tool, between);
            }
            .instrument(agent)
            .await;
        });
    });
    let events = out.events();
    let types: Vec<&str> = events.iter().map(ty).collect();
    let at = |t: &str| types.iter().position(|x| *x == t).unwrap();
    let (called, completed) = (at(ossa::TOOL_CALLED), at(ossa::TOOL_COMPLETED));
    assert!(called < completed, "{types:?}");
    assert_eq!(
        types.iter().filter(|t| **t == ossa::TOOL_CALLED).count(),
        1,
        "{types:?}"
    );
    let c = &events[called];
    assert_eq!(c["subject"], "late_search", "{c:#?}");
    assert_eq!(c["data"]["call_id"], "c7", "{c:#?}");
    assert_eq!(
        c["data"]["arguments"],
        serde_json::json!({"q": 1}),
        "{c:#?}"
    );
    assert_eq!(events[completed]["subject"], "late_search");
    // The same span, agent and trace as its end; dated at its first enter.
    for k in ["ossaspanid", "ossatraceid", "ossaagentid"] {
        assert_eq!(c[k], events[completed][k], "{k}");
    }
    assert_eq!(ext(c, "ossaagentid"), Some("researcher"));
    let between = &events[at("dev.example.between")];
    let time = |e: &Value| e["time"].as_str().unwrap().to_owned();
    assert!(time(c) < time(between), "{c:#?} {between:#?}");
}

/// A tool whose future is dropped before it finishes (`tokio::time::timeout`
/// firing) ends `tool.completed`: `tracing` tells a layer nothing of the
/// cancellation (`Instrumented` enters the span to drop its future, then
/// the span closes, as after a finished call). The caller that sees the
/// timeout and records why on a handle of the span (it closes only with
/// its last handle) makes it `tool.failed`.
#[test]
fn a_cancelled_tool_ends_completed_unless_its_caller_records_why() {
    let out = Shared::default();
    let emitter = emitter_with(&out, |b| b);
    let stuck = |name: &'static str| {
        let span = rig_tool_span();
        let fut = async move {
            tracing::Span::current().record("gen_ai.tool.name", name);
            std::future::pending::<()>().await;
        }
        .instrument(span.clone());
        (span, fut)
    };
    traced(&emitter, || {
        block_on(async {
            let (span, fut) = stuck("unmarked");
            drop(span);
            let timed_out = tokio::time::timeout(Duration::from_millis(1), fut).await;
            assert!(timed_out.is_err());

            let (span, fut) = stuck("marked");
            if tokio::time::timeout(Duration::from_millis(1), fut)
                .await
                .is_err()
            {
                span.record("gen_ai.tool.error.type", "timeout");
            }
        });
    });
    let events = out.events();
    let end = |tool: &str| {
        events
            .iter()
            .find(|e| e["subject"] == tool && ty(e) != ossa::TOOL_CALLED)
            .unwrap()
            .clone()
    };
    assert_eq!(ty(&end("unmarked")), ossa::TOOL_COMPLETED, "{events:#?}");
    let marked = end("marked");
    assert_eq!(ty(&marked), ossa::TOOL_FAILED, "{events:#?}");
    assert_eq!(marked["data"]["error"]["code"], "timeout");
}
