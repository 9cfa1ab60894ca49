//! An agent on a tokio runtime: tools run as tasks, each reports its call and
//! result through one shared emitter, and nothing blocks a runtime thread.
//!
//! ```sh
//! cargo run -p ossa-events --example tokio_agent
//! ```
//!
//! `emit()` never blocks (it encodes, queues and returns); `flush_async()`
//! and `shutdown_async()` wait without blocking; `wait_on_drop(false)` makes
//! a stray drop of the last handle non-blocking too. Prints eight events on
//! stdout as JSON Lines (the agent's start, a call and a completion for each
//! of three tools run concurrently, the agent's completion), then on
//! stderr: `flushed 7, delivered 8 events, 0 failed`.

use std::error::Error;
use std::time::Duration;

use ossa_events::{Emitter, RawJson, ossa};

fn main() -> Result<(), Box<dyn Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    rt.block_on(agent())
}

async fn agent() -> Result<(), Box<dyn Error>> {
    let emitter = Emitter::builder("/agents/planner")
        .agent_id("planner")
        .wait_on_drop(false)
        .build()?;
    emitter.emit_ossa(&ossa::AgentStarted {
        agent_id: "planner",
        ..Default::default()
    })?;

    // Three tools at once, each on its own task, each with a clone.
    let tools = ["search", "fetch", "summarize"];
    let mut tasks = Vec::new();
    for (i, tool) in tools.into_iter().enumerate() {
        let emitter = emitter.clone();
        tasks.push(tokio::spawn(async move {
            let call_id = format!("call-{i}");
            emitter.emit_ossa(&ossa::ToolCalled {
                tool,
                call_id: Some(&call_id),
                arguments: None,
            })?;
            tokio::time::sleep(Duration::from_millis(20 * (i as u64 + 1))).await;
            emitter.emit_ossa(&ossa::ToolCompleted {
                tool,
                call_id: Some(&call_id),
                result: Some(RawJson::new(r#"{"ok":true}"#)?),
                ..Default::default()
            })?;
            Ok::<(), Box<dyn Error + Send + Sync>>(())
        }));
    }
    for t in tasks {
        t.await?.map_err(|e| e as Box<dyn Error>)?;
    }
    // Everything so far is written before the agent reports completion.
    let flushed = emitter.flush_async().await?;

    emitter.emit_ossa(&ossa::AgentCompleted {
        agent_id: "planner",
        status: "success",
        ..Default::default()
    })?;
    let report = emitter.shutdown_async().await?;
    eprintln!(
        "flushed {}, delivered {} events, {} failed",
        flushed.delivered, report.delivered, report.failed
    );
    Ok(())
}
