//! A realistic OSSA agent run, for the `ossa-events demo` command, examples and tests.
//!
//! One workflow runs one agent through two turns; the first turn calls a
//! search tool that succeeds and a fetch tool that fails (timeout), the agent
//! updates its state, the second turn summarises, and everything completes.
//! All events share one `ossatraceid` and `ossainteractionid`; each operation
//! (workflow, agent, turn, tool call) has its own `ossaspanid`, and every
//! event carries the W3C `traceparent` of its span (the same ids).
//!
//! ```
//! use ossa_events::{demo, format::json, FastIds, SystemClock};
//! let mut lines = Vec::new();
//! let n = demo::agent_run("/ossa/demo/researcher", &SystemClock, &mut FastIds, |ev| {
//!     json::write_jsonl(ev, &mut lines)
//! })?;
//! assert_eq!(n, demo::EVENT_COUNT);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ossa_events_core::ossa::{self, ErrorInfo, TokenUsage};
use ossa_events_core::{Clock, Event, IdSource, RawJson, ValidationError};

/// How many events [`agent_run`] emits.
pub const EVENT_COUNT: usize = 15;

/// Why the demo run stopped.
///
/// The `emit` callback's own error comes back as `Emit`, and the run stops:
///
/// ```
/// use ossa_events::{demo::{self, DemoError}, FastIds, SystemClock};
/// let mut sent = 0;
/// let r = demo::agent_run("/ossa/demo", &SystemClock, &mut FastIds, |_| {
///     sent += 1;
///     if sent == 3 { Err("collector down") } else { Ok(()) }
/// });
/// assert!(matches!(r, Err(DemoError::Emit("collector down"))));
/// assert_eq!(sent, 3);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum DemoError<E> {
    /// An event failed validation (a bug in the demo).
    Invalid(ValidationError),
    /// The `emit` callback failed.
    Emit(E),
}

impl<E: std::fmt::Debug> std::fmt::Display for DemoError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoError::Invalid(e) => write!(f, "demo event invalid: {e}"),
            DemoError::Emit(e) => write!(f, "emit failed: {e:?}"),
        }
    }
}

impl<E: std::fmt::Debug> std::error::Error for DemoError<E> {}

fn hex_id<I: IdSource + ?Sized>(ids: &mut I, len: usize) -> String {
    ids.next_id().as_str().replace('-', "")[..len].to_string()
}

fn json(s: &'static str) -> Option<RawJson<'static>> {
    // The demo's JSON literals are fixed and well-formed.
    RawJson::new(s).ok()
}

/// Emits the demo run through `emit`, one event at a time, with ids from
/// `ids` and times from `clock`; returns the number of events emitted.
///
/// Through an emitter, as `ossa-events emit --demo` does:
///
/// ```
/// use ossa_events::{demo, sink::NullSink, Emitter, FastIds, SystemClock};
/// let emitter = Emitter::builder("/ossa/demo/researcher").sink(NullSink::new()).build()?;
/// let n = demo::agent_run("/ossa/demo/researcher", &SystemClock, &mut FastIds, |ev| emitter.emit_event(ev))?;
/// assert_eq!(emitter.flush()?.delivered, n as u64);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn agent_run<C, I, E, F>(
    source: &str,
    clock: &C,
    ids: &mut I,
    mut emit: F,
) -> Result<usize, DemoError<E>>
where
    C: Clock + ?Sized,
    I: IdSource + ?Sized,
    F: FnMut(&Event<'_>) -> Result<(), E>,
{
    let trace = hex_id(ids, 32);
    let interaction = format!("int-{}", hex_id(ids, 12));
    let workflow_span = hex_id(ids, 16);
    let agent_span = hex_id(ids, 16);
    let turn_spans = [hex_id(ids, 16), hex_id(ids, 16)];
    let tool_spans = [hex_id(ids, 16), hex_id(ids, 16), hex_id(ids, 16)];
    let agent = "researcher";
    let mut count = 0usize;

    macro_rules! send {
        ($span:expr_2021, $with_agent:expr_2021, $payload:expr_2021) => {{
            let id = ids.next_id();
            let payload = $payload;
            let mut b = Event::builder()
                .id(id.as_str())
                .source(source)
                .time(clock.now());
            if $with_agent {
                b = b.ossa_agent_id(agent);
            }
            let mut traceparent = crate::trace::TraceParentText::new();
            let ev = b
                .ossa_interaction_id(&interaction)
                .ossa_trace_id(&trace)
                .ossa_span_id($span)
                .derive_traceparent(&mut traceparent)
                .ossa(&payload)
                .build()
                .map_err(DemoError::Invalid)?;
            emit(&ev).map_err(DemoError::Emit)?;
            count += 1;
        }};
    }

    let wf_started = ossa::WorkflowStarted {
        workflow_id: "wf-research-042",
        name: Some("research-report"),
        input: json(r#"{"topic":"CloudEvents on microcontrollers","audience":"firmware team"}"#),
    };
    send!(&workflow_span, false, wf_started);

    let agent_started = ossa::AgentStarted {
        agent_id: agent,
        name: Some("Research Agent"),
        version: Some("1.4.0"),
        input: json(r#"{"goal":"Write a one-page brief with sources"}"#),
    };
    send!(&agent_span, true, agent_started);

    let turn1 = ossa::TurnStarted {
        turn: 1,
        input: json(
            r#"{"role":"user","content":"Find recent work on CloudEvents for embedded devices."}"#,
        ),
    };
    send!(&turn_spans[0], true, turn1);

    let search = ossa::ToolCalled {
        tool: "web_search",
        call_id: Some("call-1"),
        arguments: json(r#"{"query":"cloudevents no_std embedded","max_results":5}"#),
    };
    send!(&tool_spans[0], true, search);
    let search_done = ossa::ToolCompleted {
        tool: "web_search",
        call_id: Some("call-1"),
        result: json(
            r#"{"hits":5,"top":{"title":"CloudEvents JSON format","url":"https://github.com/cloudevents/spec"}}"#,
        ),
        duration_ms: Some(412),
    };
    send!(&tool_spans[0], true, search_done);

    let fetch = ossa::ToolCalled {
        tool: "fetch_url",
        call_id: Some("call-2"),
        arguments: json(r#"{"url":"https://example.com/papers/embedded-events.pdf"}"#),
    };
    send!(&tool_spans[1], true, fetch);
    let fetch_failed = ossa::ToolFailed {
        tool: "fetch_url",
        call_id: Some("call-2"),
        error: ErrorInfo {
            message: "upstream did not answer within 10 s",
            code: Some("timeout"),
            retryable: Some(true),
        },
        duration_ms: Some(10_003),
    };
    send!(&tool_spans[1], true, fetch_failed);

    let state = ossa::StateUpdated {
        key: "sources",
        value: json(r#"["https://github.com/cloudevents/spec"]"#),
    };
    send!(&turn_spans[0], true, state);

    let turn1_done = ossa::TurnCompleted {
        turn: 1,
        output: json(
            r#"{"role":"assistant","content":"Found 1 usable source; 1 fetch timed out."}"#,
        ),
        usage: Some(TokenUsage {
            input_tokens: 1812,
            output_tokens: 264,
        }),
        duration_ms: Some(11_240),
    };
    send!(&turn_spans[0], true, turn1_done);

    let turn2 = ossa::TurnStarted {
        turn: 2,
        input: json(r#"{"role":"user","content":"Write the brief from what you have."}"#),
    };
    send!(&turn_spans[1], true, turn2);
    let summarize = ossa::ToolCalled {
        tool: "summarize",
        call_id: Some("call-3"),
        arguments: json(r#"{"max_words":300,"style":"brief"}"#),
    };
    send!(&tool_spans[2], true, summarize);
    let summarize_done = ossa::ToolCompleted {
        tool: "summarize",
        call_id: Some("call-3"),
        result: json(r#"{"words":287}"#),
        duration_ms: Some(2_310),
    };
    send!(&tool_spans[2], true, summarize_done);
    let turn2_done = ossa::TurnCompleted {
        turn: 2,
        output: json(r#"{"role":"assistant","content":"Brief ready (287 words)."}"#),
        usage: Some(TokenUsage {
            input_tokens: 2930,
            output_tokens: 402,
        }),
        duration_ms: Some(3_105),
    };
    send!(&turn_spans[1], true, turn2_done);

    let agent_done = ossa::AgentCompleted {
        agent_id: agent,
        status: "success",
        output: json(r#"{"brief_words":287,"sources":1,"failed_tools":1}"#),
        duration_ms: Some(14_480),
    };
    send!(&agent_span, true, agent_done);

    let wf_done = ossa::WorkflowCompleted {
        workflow_id: "wf-research-042",
        status: "success",
        output: None,
        duration_ms: Some(14_502),
    };
    send!(&workflow_span, false, wf_done);

    Ok(count)
}
