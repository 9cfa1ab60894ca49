//! A complete agent workflow, traced: workflow started → agent started →
//! two turns with three tool calls (one of them fails) → completions →
//! workflow completed, written to stdout as JSON Lines.
//!
//! ```sh
//! cargo run -p ossa-events --example agent_workflow
//! ```
//!
//! Every event carries the same `ossatraceid`, `ossainteractionid` and
//! `ossaagentid` (set once on the emitter). Each operation — the workflow, the
//! agent run, each turn, each tool call — has its own `ossaspanid`, shared by
//! its started and its completed/failed event. Prints 14 events on stdout,
//! then on stderr (the trace id is a new one on every run):
//!
//! ```text
//! trace 4bf92f3577b34da6a3ce929d0e0e4736: 14 events in 7 spans, 1 of 3 tool calls failed
//! ```
//!
//! (`ossa-events demo` prints a longer run of the same kind, built by
//! `ossa_events::demo::agent_run`.)

use std::error::Error;
use std::time::Instant;

use ossa_events::ossa::{self, ErrorInfo, TokenUsage};
use ossa_events::{Emitter, EventBuilder, RawJson};

/// A tool's failure, as the agent runtime sees it.
struct ToolError {
    code: &'static str,
    message: String,
    retryable: bool,
}

/// A fresh id of `len` hex digits (a trace id is 32, a span id 16).
fn hex_id(len: usize) -> String {
    ossa_events::new_id()
        .as_str()
        .chars()
        .filter(|c| *c != '-')
        .take(len)
        .collect()
}

/// An OSSA event in span `span`; the emitter adds the trace, agent and
/// interaction ids, the event id, source and time.
fn in_span<'a, P: ossa::Payload>(span: &'a str, payload: &'a P) -> EventBuilder<'a> {
    EventBuilder::new().ossa(payload).ossa_span_id(span)
}

/// Runs one tool call in a span of its own: `tool.called`, then
/// `tool.completed` with its result or `tool.failed` with its error.
/// Returns whether the tool succeeded.
fn call_tool(
    emitter: &Emitter,
    tool: &str,
    call_id: &str,
    arguments: &str,
    run: impl FnOnce() -> Result<String, ToolError>,
) -> Result<bool, Box<dyn Error>> {
    let span = hex_id(16);
    let call = ossa::ToolCalled {
        tool,
        call_id: Some(call_id),
        arguments: Some(RawJson::new(arguments)?),
    };
    emitter.emit(in_span(&span, &call))?;

    let started = Instant::now();
    let outcome = run();
    let duration_ms = Some(started.elapsed().as_millis() as u64);
    match outcome {
        Ok(result) => {
            let done = ossa::ToolCompleted {
                tool,
                call_id: Some(call_id),
                result: Some(RawJson::new(&result)?),
                duration_ms,
            };
            emitter.emit(in_span(&span, &done))?;
            Ok(true)
        }
        Err(e) => {
            let failed = ossa::ToolFailed {
                tool,
                call_id: Some(call_id),
                error: ErrorInfo {
                    message: &e.message,
                    code: Some(e.code),
                    retryable: Some(e.retryable),
                },
                duration_ms,
            };
            emitter.emit(in_span(&span, &failed))?;
            Ok(false)
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let trace = hex_id(32);
    let interaction = format!("session-{}", hex_id(12));
    let emitter = Emitter::builder("/agents/researcher")
        .agent_id("researcher")
        .interaction_id(interaction)
        .trace_id(trace.as_str())
        .build()?;
    let started = Instant::now();
    let elapsed_ms = || Some(started.elapsed().as_millis() as u64);

    let workflow_span = hex_id(16);
    emitter.emit(in_span(
        &workflow_span,
        &ossa::WorkflowStarted {
            workflow_id: "wf-research-042",
            name: Some("research-report"),
            input: Some(RawJson::new(
                r#"{"topic":"CloudEvents on microcontrollers"}"#,
            )?),
        },
    ))?;

    let agent_span = hex_id(16);
    emitter.emit(in_span(
        &agent_span,
        &ossa::AgentStarted {
            agent_id: "researcher",
            name: Some("Research Agent"),
            version: Some("1.4.0"),
            input: None,
        },
    ))?;

    // Turn 1: a search that works and a fetch that times out.
    let turn1 = hex_id(16);
    emitter.emit(in_span(
        &turn1,
        &ossa::TurnStarted {
            turn: 1,
            input: Some(RawJson::new(
                r#"{"role":"user","content":"Find sources."}"#,
            )?),
        },
    ))?;
    let search = call_tool(
        &emitter,
        "web_search",
        "call-1",
        r#"{"query":"cloudevents no_std","max_results":5}"#,
        || Ok(r#"{"hits":5}"#.to_owned()),
    )?;
    let fetch = call_tool(
        &emitter,
        "fetch_url",
        "call-2",
        r#"{"url":"https://example.com/paper.pdf"}"#,
        || {
            Err(ToolError {
                code: "timeout",
                message: "upstream did not answer within 10 s".to_owned(),
                retryable: true,
            })
        },
    )?;
    emitter.emit(in_span(
        &turn1,
        &ossa::TurnCompleted {
            turn: 1,
            output: Some(RawJson::new(
                r#"{"role":"assistant","content":"1 source."}"#,
            )?),
            usage: Some(TokenUsage {
                input_tokens: 1812,
                output_tokens: 264,
            }),
            duration_ms: elapsed_ms(),
        },
    ))?;

    // Turn 2: write the summary from what turn 1 found.
    let turn2 = hex_id(16);
    emitter.emit(in_span(
        &turn2,
        &ossa::TurnStarted {
            turn: 2,
            input: None,
        },
    ))?;
    let summary = call_tool(
        &emitter,
        "summarize",
        "call-3",
        r#"{"max_words":300}"#,
        || Ok(r#"{"words":287}"#.to_owned()),
    )?;
    emitter.emit(in_span(
        &turn2,
        &ossa::TurnCompleted {
            turn: 2,
            output: Some(RawJson::new(
                r#"{"role":"assistant","content":"Brief ready."}"#,
            )?),
            usage: Some(TokenUsage {
                input_tokens: 2930,
                output_tokens: 402,
            }),
            duration_ms: elapsed_ms(),
        },
    ))?;

    emitter.emit(in_span(
        &agent_span,
        &ossa::AgentCompleted {
            agent_id: "researcher",
            status: "success",
            output: Some(RawJson::new(r#"{"brief_words":287,"failed_tools":1}"#)?),
            duration_ms: elapsed_ms(),
        },
    ))?;
    emitter.emit(in_span(
        &workflow_span,
        &ossa::WorkflowCompleted {
            workflow_id: "wf-research-042",
            status: "success",
            output: None,
            duration_ms: elapsed_ms(),
        },
    ))?;

    let report = emitter.shutdown()?;
    let tools = [search, fetch, summary];
    // The workflow, the agent run, two turns, and one span per tool call.
    let spans = 4 + tools.len();
    let failed = tools.iter().filter(|ok| !**ok).count();
    eprintln!(
        "trace {trace}: {} events in {spans} spans, {failed} of {} tool calls failed",
        report.delivered,
        tools.len()
    );
    Ok(())
}
