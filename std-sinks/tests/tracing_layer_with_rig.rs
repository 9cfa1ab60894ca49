//! A real rig agent run under `OssaLayer`: rig-agent 0.44's runtime with
//! its scripted completion model (a tool call, then a final answer) and its
//! `add` tool, on a tokio runtime. The spans are rig's own, so this test
//! breaks if rig changes their names or fields in a way the layer does not
//! follow.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ossa_events::ossa;
use ossa_events::tracing_layer::OssaLayer;
use rig_agent::agent::AgentBuilder;
use rig_agent::test_utils::{MockAddTool, MockCompletionModel, MockTurn};
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt as _;

use common::Captured as Shared;

#[test]
fn a_rig_agent_with_a_scripted_model_and_a_tool_becomes_ossa_events() {
    let out = Shared::default();
    let emitter = out.emitter("/agents/rig");
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(emitter.clone()));
    let answer = tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let model = MockCompletionModel::from_turns([
                    MockTurn::tool_call("tc1", "add", json!({"x": 1, "y": 2})),
                    MockTurn::text("1 + 2 = 3"),
                ]);
                AgentBuilder::new(model)
                    .name("calculator")
                    .tool(MockAddTool)
                    .record_content_telemetry(true)
                    .build()
                    .prompt("what is 1 + 2?")
                    .max_turns(3)
                    .run()
                    .await
                    .expect("the scripted run")
            })
    });
    emitter.flush().unwrap();
    let bytes = out.0.lock().unwrap().clone();
    let events: Vec<Value> = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
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
        ],
        "{events:#?}"
    );
    let trace = events[0]["ossatraceid"].as_str().unwrap();
    for e in &events {
        assert_eq!(e["ossatraceid"], trace);
        assert_eq!(e["ossaagentid"], "calculator");
    }
    assert_eq!(events[0]["data"]["agent_id"], "calculator");
    assert_eq!(events[0]["data"]["input"], "what is 1 + 2?");
    assert_eq!(
        (
            events[1]["data"]["turn"].as_u64(),
            events[5]["data"]["turn"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(events[3]["subject"], "add");
    assert_eq!(events[3]["data"]["call_id"], "tc1");
    assert_eq!(events[3]["data"]["arguments"], json!({"x": 1, "y": 2}));
    assert_eq!(events[4]["data"]["result"], 3);
    assert_eq!(events[7]["data"]["output"], answer.output());
    let m = emitter.metrics();
    assert_eq!((m.delivered, m.dropped, m.rejected), (8, 0, 0));
}
