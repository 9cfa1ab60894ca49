//! Property: whatever the order of span creation, enters (double ones
//! too), exits, late records and closes, and with spans never closed, every
//! GenAI span that was entered produces exactly one start event and at most
//! one end event (exactly one if it was closed), a span never entered
//! produces none, and every event the layer emitted is delivered or counted.
//! One exception: a tool span that never got its tool name waits for it
//! until it closes, so one kept open by a leak may not start.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use ossa_events::ossa;
use ossa_events::tracing_layer::OssaLayer;
use proptest::prelude::*;
use tracing::field::Empty;
use tracing_subscriber::layer::SubscriberExt as _;

use common::Captured as Shared;

#[derive(Debug, Clone)]
enum Op {
    /// A new span of kind `0..5` (4: a plain span), inside the span at this
    /// index of the live ones if any (else at the current one).
    New(u8, Option<usize>),
    Enter(usize),
    Exit(usize),
    Record(usize),
    Close(usize),
    /// Never closed: its handle is leaked.
    Leak(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u8..5, proptest::option::of(0usize..16)).prop_map(|(k, p)| Op::New(k, p)),
        3 => (0usize..16).prop_map(Op::Enter),
        2 => (0usize..16).prop_map(Op::Exit),
        2 => (0usize..16).prop_map(Op::Record),
        1 => (0usize..16).prop_map(Op::Close),
        1 => (0usize..16).prop_map(Op::Leak),
    ]
}

/// What the test did to span `n` (its `gen_ai.conversation.id` is `s{n}`).
#[derive(Default, Clone, Copy)]
struct Fate {
    genai: bool,
    /// A tool span (made without its tool name).
    tool: bool,
    entered: bool,
    closed: bool,
}

struct Live {
    n: usize,
    span: tracing::Span,
    /// Guards of its enters still open.
    entered: Vec<tracing::span::EnteredSpan>,
}

fn new_span(kind: u8, n: usize, parent: Option<&tracing::Span>) -> tracing::Span {
    let conv = format!("s{n}");
    let parent = parent.and_then(|p| p.id());
    match kind {
        0 => {
            tracing::info_span!(parent: parent, "invoke_workflow", gen_ai.conversation.id = conv.as_str(), error.type = Empty)
        }
        1 => {
            tracing::info_span!(parent: parent, "invoke_agent", gen_ai.conversation.id = conv.as_str(), gen_ai.agent.name = Empty, error.type = Empty)
        }
        2 => {
            tracing::info_span!(parent: parent, "chat", gen_ai.conversation.id = conv.as_str(), gen_ai.usage.input_tokens = Empty, error.type = Empty)
        }
        3 => {
            tracing::info_span!(parent: parent, "execute_tool", gen_ai.conversation.id = conv.as_str(), gen_ai.tool.name = Empty, gen_ai.tool.call.result = Empty, error.type = Empty)
        }
        _ => tracing::info_span!(parent: parent, "plain", gen_ai.conversation.id = Empty),
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let out = Shared::default();
    let emitter = out.emitter("/agents/prop");
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(emitter.clone()));
    let mut fates: Vec<Fate> = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        let mut live: Vec<Live> = Vec::new();
        for op in ops {
            let pick = |i: usize, live: &Vec<Live>| (!live.is_empty()).then(|| i % live.len());
            match *op {
                Op::New(kind, parent) => {
                    let n = fates.len();
                    let p = parent.and_then(|i| pick(i, &live)).map(|i| &live[i].span);
                    let span = new_span(kind, n, p);
                    fates.push(Fate {
                        genai: kind < 4,
                        tool: kind == 3,
                        ..Fate::default()
                    });
                    live.push(Live {
                        n,
                        span,
                        entered: Vec::new(),
                    });
                }
                Op::Enter(i) => {
                    if let Some(i) = pick(i, &live) {
                        let l = &mut live[i];
                        l.entered.push(l.span.clone().entered());
                        fates[l.n].entered = true;
                    }
                }
                Op::Exit(i) => {
                    if let Some(i) = pick(i, &live) {
                        drop(live[i].entered.pop());
                    }
                }
                Op::Record(i) => {
                    if let Some(i) = pick(i, &live) {
                        let s = &live[i].span;
                        s.record("gen_ai.tool.name", "late_tool");
                        s.record("gen_ai.agent.name", "late_agent");
                        s.record("gen_ai.usage.input_tokens", 7u64);
                        s.record("gen_ai.tool.call.result", "{\"ok\":true}");
                        if i % 3 == 0 {
                            s.record("error.type", "boom");
                        }
                    }
                }
                Op::Close(i) => {
                    if let Some(i) = pick(i, &live) {
                        // Closed once its handle and its enter guards are gone
                        // (and the spans inside it: their parent stays open
                        // until they close, which the check below allows).
                        let l = live.swap_remove(i);
                        drop(l.entered);
                        drop(l.span);
                        fates[l.n].closed = true;
                    }
                }
                Op::Leak(i) => {
                    if let Some(i) = pick(i, &live) {
                        let l = live.swap_remove(i);
                        for g in l.entered {
                            std::mem::forget(g.exit());
                        }
                        std::mem::forget(l.span);
                    }
                }
            }
        }
        // The rest close at the end of the run.
        for l in live.drain(..) {
            fates[l.n].closed = true;
        }
    });
    emitter.flush().unwrap();

    // Events per span, by the interaction id each span carries.
    let bytes = out.0.lock().unwrap().clone();
    let mut starts: HashMap<String, usize> = HashMap::new();
    let mut ends: HashMap<String, usize> = HashMap::new();
    let mut total = 0u64;
    for line in String::from_utf8(bytes).unwrap().lines() {
        total += 1;
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        let conv = e["ossainteractionid"].as_str().unwrap().to_owned();
        let ty = e["type"].as_str().unwrap();
        let start = [
            ossa::WORKFLOW_STARTED,
            ossa::AGENT_STARTED,
            ossa::TURN_STARTED,
            ossa::TOOL_CALLED,
        ]
        .contains(&ty);
        *(if start { &mut starts } else { &mut ends })
            .entry(conv)
            .or_default() += 1;
    }
    for (n, f) in fates.iter().enumerate() {
        let key = format!("s{n}");
        let s = starts.get(&key).copied().unwrap_or(0);
        let e = ends.get(&key).copied().unwrap_or(0);
        let want_start = usize::from(f.genai && f.entered);
        // A tool span that never got its name and was kept open by a leak
        // (its own, or of a span inside it) waits to start for ever.
        let may_wait = f.tool && ops.iter().any(|o| matches!(o, Op::Leak(_)));
        if !(may_wait && s == 0) {
            prop_assert_eq!(s, want_start, "span {} starts", n);
        }
        prop_assert!(e <= want_start, "span {} ends {}", n, e);
        // A closed span ends, unless a leaked span inside it keeps it open.
        if f.closed && e == 0 && want_start == 1 {
            prop_assert!(
                ops.iter().any(|o| matches!(o, Op::Leak(_))),
                "span {} closed without an end event",
                n
            );
        }
    }
    let m = emitter.metrics();
    prop_assert_eq!((m.dropped, m.rejected, m.failed), (0, 0, 0));
    prop_assert_eq!(m.emitted, total);
    prop_assert_eq!(m.delivered, total);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn every_entered_span_starts_once_and_ends_at_most_once(ops in proptest::collection::vec(op(), 1..60)) {
        run(&ops)?;
    }
}
