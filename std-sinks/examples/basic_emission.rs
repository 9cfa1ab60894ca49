//! Basic emission: an agent reports its start, a tool call and its completion
//! as OSSA CloudEvents, written to stdout as JSON Lines.
//!
//! ```sh
//! cargo run -p ossa-events --example basic_emission
//! ```
//!
//! Prints three events on stdout, one JSON object a line
//! (`dev.ossa.agent.started`, `dev.ossa.tool.called`,
//! `dev.ossa.agent.completed`), each with a fresh `id`, the `source`
//! `/agents/my-agent`, the current `time` and `ossaagentid: "my-agent"`;
//! then on stderr: `delivered 3 events, 0 failed`.

use std::error::Error;

use ossa_events::{Emitter, RawJson, ossa};

fn main() -> Result<(), Box<dyn Error>> {
    // Without `.sink(…)` the emitter writes JSON Lines to stdout. `agent_id`
    // becomes the `ossaagentid` of every event that does not set its own.
    let emitter = Emitter::builder("/agents/my-agent")
        .agent_id("my-agent")
        .build()?;

    emitter.emit_ossa(&ossa::AgentStarted {
        agent_id: "my-agent",
        name: Some("My Agent"),
        version: Some("1.0.0"),
        ..Default::default()
    })?;
    emitter.emit_ossa(&ossa::ToolCalled {
        tool: "search",
        call_id: Some("call-1"),
        arguments: Some(RawJson::new(r#"{"query":"test"}"#)?),
    })?;
    emitter.emit_ossa(&ossa::AgentCompleted {
        agent_id: "my-agent",
        status: "success",
        ..Default::default()
    })?;

    // Delivers what is still queued, then stops the background worker.
    let report = emitter.shutdown()?;
    eprintln!(
        "delivered {} events, {} failed",
        report.delivered, report.failed
    );
    Ok(())
}
