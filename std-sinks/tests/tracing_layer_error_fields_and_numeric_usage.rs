//! `OssaLayer` with what an adversarial review found lost (each test failed
//! before its fix): the error of `#[instrument(err)]`, which is in the
//! event's `error` field (no `message`), token usage recorded as a float,
//! and the trace of a span under two layers when the first one's per-layer
//! filter hides the span around it.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ossa_events::tracing_layer::OssaLayer;
use serde_json::Value;
use tracing::field::Empty;
use tracing_subscriber::layer::SubscriberExt as _;

use common::Captured as Shared;

/// Runs `f` under a subscriber with an `OssaLayer`; the events it made.
fn events_of(f: impl FnOnce()) -> Vec<Value> {
    let out = Shared::default();
    let emitter = out.emitter("/agents/a");
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(emitter.clone()));
    tracing::subscriber::with_default(subscriber, f);
    emitter.flush().unwrap();
    out.events()
}

fn of_type<'a>(events: &'a [Value], ty: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} in {events:#?}"))
}

#[derive(Debug)]
struct QuotaExceeded;

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("quota exceeded")
    }
}

impl std::error::Error for QuotaExceeded {}

/// `#[instrument(err)]` on a function returning `Err(e)` emits, inside its
/// span, `event!(Level::ERROR, error = %e)` (`err(Debug)`: `error = ?e`):
/// no `message` field. The failure's `error.message` is the error's text,
/// not a bare "error".
#[test]
fn the_error_of_instrument_err_is_the_failures_message() {
    let events = events_of(|| {
        let agent = tracing::info_span!("invoke_agent", gen_ai.agent.id = "a1");
        agent.in_scope(|| tracing::error!(error = %QuotaExceeded));
        let tool = tracing::info_span!("execute_tool", gen_ai.tool.name = "search");
        tool.in_scope(|| tracing::error!(error = ?"rate limited"));
        let wf = tracing::info_span!("invoke_agent", gen_ai.agent.id = "a2");
        let e = QuotaExceeded;
        wf.in_scope(|| tracing::error!(error = &e as &dyn std::error::Error));
    });
    let agent_failed: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "dev.ossa.agent.failed")
        .collect();
    assert_eq!(agent_failed.len(), 2, "{events:#?}");
    assert_eq!(
        agent_failed[0]["data"]["error"]["message"],
        "quota exceeded"
    );
    assert_eq!(
        agent_failed[1]["data"]["error"]["message"],
        "quota exceeded"
    );
    assert_eq!(
        of_type(&events, "dev.ossa.tool.failed")["data"]["error"]["message"],
        "\"rate limited\""
    );
}

/// A `message` still wins over an `error` field in the same event.
#[test]
fn a_message_goes_before_an_error_field() {
    let events = events_of(|| {
        let agent = tracing::info_span!("invoke_agent", gen_ai.agent.id = "a1");
        agent.in_scope(|| tracing::error!(error = %QuotaExceeded, "model call failed"));
    });
    assert_eq!(
        of_type(&events, "dev.ossa.agent.failed")["data"]["error"]["message"],
        "model call failed"
    );
}

/// Token counts recorded as whole floats (instrumentation bridged from
/// languages whose numbers are doubles) are counts, as they are as `i64`,
/// `u64` or text.
#[test]
fn usage_recorded_as_a_whole_float_is_counted() {
    let events = events_of(|| {
        let agent = tracing::info_span!("invoke_agent", gen_ai.agent.id = "a1");
        let _a = agent.enter();
        for (input, output) in [(Some(120.0), Some(7.0)), (None, None)] {
            let chat = tracing::info_span!(
                "chat",
                gen_ai.usage.input_tokens = Empty,
                gen_ai.usage.output_tokens = Empty
            );
            chat.in_scope(|| {});
            if let (Some(i), Some(o)) = (input, output) {
                chat.record("gen_ai.usage.input_tokens", i);
                chat.record("gen_ai.usage.output_tokens", o);
            } else {
                chat.record("gen_ai.usage.input_tokens", 5i64);
                chat.record("gen_ai.usage.output_tokens", "9");
            }
        }
    });
    let turns: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "dev.ossa.turn.completed")
        .collect();
    assert_eq!(turns.len(), 2, "{events:#?}");
    assert_eq!(
        turns[0]["data"]["usage"]["input_tokens"], 120,
        "{events:#?}"
    );
    assert_eq!(turns[0]["data"]["usage"]["output_tokens"], 7);
    assert_eq!(turns[1]["data"]["usage"]["input_tokens"], 5);
    assert_eq!(turns[1]["data"]["usage"]["output_tokens"], 9);
}

/// Two `OssaLayer`s, the first with a per-layer filter that leaves out the
/// agent span: the second sees the agent and the chat in it, and its chat
/// events are in the agent's trace.
#[test]
fn a_span_another_layer_filters_out_keeps_its_trace_in_this_one() {
    use tracing_subscriber::Layer as _;
    let (out_a, out_b) = (Shared::default(), Shared::default());
    let (a, b) = (out_a.emitter("/agents/a"), out_b.emitter("/agents/b"));
    let subscriber = tracing_subscriber::registry()
        .with(
            OssaLayer::new(a.clone()).with_filter(tracing_subscriber::filter::filter_fn(|m| {
                m.name() != "invoke_agent"
            })),
        )
        .with(OssaLayer::new(b.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let agent = tracing::info_span!("invoke_agent", gen_ai.agent.id = "a1");
        let _a = agent.enter();
        tracing::info_span!("chat").in_scope(|| {});
    });
    a.flush().unwrap();
    b.flush().unwrap();
    let (ea, eb) = (out_a.events(), out_b.events());
    assert_eq!(ea.len(), 2, "{ea:#?}");
    assert_eq!(eb.len(), 4, "{eb:#?}");
    let trace = |e: &Value| e["ossatraceid"].as_str().unwrap().to_owned();
    assert_eq!(trace(&eb[0]), trace(&eb[1]), "{eb:#?}");
    assert_eq!(eb[1]["ossaagentid"], "a1");
}

/// CloudEvents (spec.md, "Type System", String): the control characters
/// U+0000–U+001F and U+007F–U+009F "MUST NOT be used". The layer copied
/// span fields verbatim into `subject` (`agent_id`, `tool`, `workflow_id`)
/// and into `ossaagentid` and `ossainteractionid`: an agent name with a
/// newline or a tool name with a tab (text a span field may well hold)
/// made every event of the agent and of the spans in it invalid, and the
/// emitter rejected them all. Such characters become U+FFFD there; the
/// data keeps them (JSON escapes them).
#[test]
fn control_characters_in_span_fields_do_not_lose_the_events() {
    let out = Shared::default();
    let emitter = out.emitter("/agents/a");
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(emitter.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let wf = tracing::info_span!("invoke_workflow", gen_ai.workflow.id = "w\u{85}1");
        let _w = wf.enter();
        let agent = tracing::info_span!(
            "invoke_agent",
            gen_ai.agent.name = "Research\nAgent",
            gen_ai.conversation.id = "conv\u{7}1"
        );
        agent.in_scope(|| {
            tracing::info_span!("execute_tool", gen_ai.tool.name = "web\tsearch").in_scope(|| {});
        });
    });
    emitter.flush().unwrap();
    let m = emitter.metrics();
    let events = out.events();
    assert_eq!((m.rejected, events.len()), (0, 6), "{m:?} {events:#?}");
    let agent = of_type(&events, "dev.ossa.agent.started");
    assert_eq!(agent["subject"], "Research\u{fffd}Agent");
    assert_eq!(agent["ossaagentid"], "Research\u{fffd}Agent");
    assert_eq!(agent["ossainteractionid"], "conv\u{fffd}1");
    let tool = of_type(&events, "dev.ossa.tool.called");
    assert_eq!(tool["subject"], "web\u{fffd}search");
    assert_eq!(tool["ossaagentid"], "Research\u{fffd}Agent");
    assert_eq!(tool["data"]["tool"], "web\tsearch");
    assert_eq!(agent["data"]["agent_id"], "Research\nAgent");
    assert_eq!(
        of_type(&events, "dev.ossa.workflow.completed")["subject"],
        "w\u{fffd}1"
    );
}
