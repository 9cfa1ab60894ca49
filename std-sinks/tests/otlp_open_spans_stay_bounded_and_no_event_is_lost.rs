#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property test of the OTLP sink: random interleavings of lifecycle events
//! (missing ends, ends without starts, duplicates, several traces and
//! agents, lone events), sent in random batches through a writer that fails
//! at random (retryable), answered and retried as the emitter's worker does.
//! The open-span table never holds more than its bound; every event is
//! answered delivered or failed (with a reason), once; every delivered event
//! is in the output exactly once unless the sink counted lost spans, and no
//! failed event is in it.
#![cfg(feature = "otlp")]

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ossa_events::sink::{Encoded, Encoding, OtlpSink, Sink};
use ossa_events::{Event, Retry, Timestamp};
use proptest::prelude::*;

/// A writer that fails (before writing anything) when its pattern says so,
/// until `calm` is set.
#[derive(Clone, Default)]
struct Flaky {
    out: Arc<Mutex<Vec<u8>>>,
    fails: Arc<Mutex<VecDeque<bool>>>,
    calm: Arc<AtomicBool>,
}

impl Write for Flaky {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let fail = !self.calm.load(Ordering::SeqCst)
            && self.fails.lock().unwrap().pop_front().unwrap_or(false);
        if fail {
            return Err(std::io::Error::other("collector unreachable"));
        }
        self.out.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One generated event: trace, span, operation (0..4, 4 = state.updated),
/// phase (0 start, 1 end, 2 fail), key.
type Step = (u8, u8, u8, u8, u8);

const TYPES: [[&str; 3]; 5] = [
    [
        "dev.ossa.workflow.started",
        "dev.ossa.workflow.completed",
        "dev.ossa.workflow.completed",
    ],
    [
        "dev.ossa.agent.started",
        "dev.ossa.agent.completed",
        "dev.ossa.agent.failed",
    ],
    [
        "dev.ossa.turn.started",
        "dev.ossa.turn.completed",
        "dev.ossa.turn.completed",
    ],
    [
        "dev.ossa.tool.called",
        "dev.ossa.tool.completed",
        "dev.ossa.tool.failed",
    ],
    [
        "dev.ossa.state.updated",
        "dev.ossa.state.updated",
        "dev.ossa.state.updated",
    ],
];

fn encode(i: usize, (trace, span, op, phase, key): Step) -> Encoded {
    let ty = TYPES[usize::from(op % 5)][usize::from(phase % 3)];
    let data = match op % 5 {
        0 => format!(r#"{{"workflow_id":"wf-{key}"}}"#),
        1 => format!(r#"{{"agent_id":"ag-{key}","error":{{"message":"boom","code":"x"}}}}"#),
        2 => format!(r#"{{"turn":{key},"usage":{{"input_tokens":1,"output_tokens":2}}}}"#),
        3 => format!(r#"{{"tool":"t","call_id":"c-{key}","error":{{"message":"boom"}}}}"#),
        _ => r#"{"key":"k"}"#.to_string(),
    };
    let trace = format!("{:032x}", u128::from(trace) + 1);
    let span = format!("{:016x}", u64::from(span) + 1);
    let agent = format!("ag-{}", key % 2);
    let id = format!("e{i}");
    let ev = Event::builder()
        .id(&id)
        .source("/prop")
        .ty(ty)
        .time(Timestamp::from_unix(1_700_000_000 + i as i64, 0).unwrap())
        .ossa_trace_id(&trace)
        .ossa_span_id(&span)
        .ossa_agent_id(&agent)
        .data_json(&data)
        .build()
        .unwrap();
    Encoded::new(&ev, Encoding::Json).unwrap()
}

/// The event ids each exported span carries (its own, its end's, its span
/// events'), counted over the whole output.
fn ids_in(output: &[u8]) -> HashMap<String, usize> {
    let mut count = HashMap::new();
    for line in output.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let req: serde_json::Value = serde_json::from_slice(line).unwrap();
        for span in req["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap()
        {
            let mut ids = std::collections::BTreeSet::new();
            let mut take = |attrs: &serde_json::Value| {
                for a in attrs.as_array().into_iter().flatten() {
                    if a["key"] == "cloudevents.event_id" || a["key"] == "ossa.end_event_id" {
                        ids.insert(a["value"]["stringValue"].as_str().unwrap().to_owned());
                    }
                }
            };
            take(&span["attributes"]);
            for e in span["events"].as_array().into_iter().flatten() {
                take(&e["attributes"]);
            }
            for id in ids {
                *count.entry(id).or_insert(0) += 1;
            }
        }
    }
    count
}

fn step() -> impl Strategy<Value = Step> {
    (0u8..2, 0u8..4, 0u8..5, 0u8..3, 0u8..3)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn open_spans_stay_bounded_and_every_event_ends_once(
        steps in prop::collection::vec(step(), 1..150),
        max_open in 1usize..6,
        max_events in 0usize..4,
        batch in 1usize..9,
        fails in prop::collection::vec(prop::bool::weighted(0.3), 0..60),
    ) {
        let w = Flaky::default();
        *w.fails.lock().unwrap() = fails.into_iter().collect();
        let mut sink = OtlpSink::to_writer(w.clone())
            .max_open_spans(max_open)
            .max_span_events(max_events)
            .build()
            .unwrap();
        let stats = sink.stats();
        let events: Vec<Encoded> = steps.iter().enumerate().map(|(i, s)| encode(i, *s)).collect();
        // None: not answered yet; Some(true) delivered; Some(false) failed.
        let mut end: Vec<Option<bool>> = vec![None; events.len()];
        for start in (0..events.len()).step_by(batch) {
            let mut todo: Vec<usize> = (start..(start + batch).min(events.len())).collect();
            let mut attempt = 0;
            while !todo.is_empty() {
                attempt += 1;
                let part: Vec<Encoded> = todo.iter().map(|&i| events[i].clone()).collect();
                let r = sink.send(&part);
                prop_assert!(stats.get().open <= max_open as u64, "{:?}", stats.get());
                let mut again = Vec::new();
                for (j, &i) in todo.iter().enumerate() {
                    let failure = r.as_ref().err().and_then(|e| e.failure_of(j));
                    match failure {
                        None => end[i] = Some(true),
                        Some(f) if matches!(f.retry, Retry::Yes { .. }) && attempt < 4 => again.push(i),
                        Some(f) => {
                            prop_assert!(!f.error.to_string().is_empty());
                            end[i] = Some(false);
                        }
                    }
                }
                todo = again;
            }
        }
        // Shutdown: the collector is back; the sink sends what is open.
        w.calm.store(true, Ordering::SeqCst);
        drop(sink);
        let c = stats.get();
        prop_assert_eq!(c.open, 0);
        prop_assert!(end.iter().all(Option::is_some), "every event answered");
        let out = w.out.lock().unwrap().clone();
        let seen = ids_in(&out);
        let mut missing = 0;
        for (i, e) in end.iter().enumerate() {
            let n = seen.get(&format!("e{i}")).copied().unwrap_or(0);
            if *e == Some(true) {
                prop_assert!(n <= 1, "e{} exported {} times", i, n);
                missing += usize::from(n == 0);
            } else {
                prop_assert_eq!(n, 0, "failed e{} is in the output", i);
            }
        }
        // A delivered event missing from the output is in a span the sink
        // counted lost (never silently).
        prop_assert!(missing == 0 || c.lost > 0, "{} delivered events missing, {:?}", missing, c);
    }
}

/// A writer that takes half of its first write and fails the next one (a
/// disk that fills mid-request), then works.
#[derive(Clone, Default)]
struct Tearing {
    out: Arc<Mutex<Vec<u8>>>,
    calls: Arc<Mutex<u32>>,
}

impl Write for Tearing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let call = {
            let mut c = self.calls.lock().unwrap();
            *c += 1;
            *c
        };
        let n = match call {
            1 => buf.len() / 2,
            2 => return Err(std::io::Error::other("disk full")),
            _ => buf.len(),
        };
        self.out.lock().unwrap().extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_torn_write_leaves_its_part_on_a_line_of_its_own() {
    let w = Tearing::default();
    let mut sink = OtlpSink::to_writer(w.clone()).build().unwrap();
    // A lone event with no open span: a log-like span, sent at once.
    let ev = encode(0, (0, 0, 4, 0, 0));
    let err = sink.send(std::slice::from_ref(&ev)).unwrap_err();
    assert!(matches!(
        err.failure_of(0).unwrap().retry,
        Retry::Yes { .. }
    ));
    sink.send(std::slice::from_ref(&ev)).unwrap();
    drop(sink);
    let out = w.out.lock().unwrap().clone();
    let lines: Vec<&[u8]> = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        serde_json::from_slice::<serde_json::Value>(lines[0]).is_err(),
        "the torn part"
    );
    assert_eq!(
        ids_in(lines[1]).get("e0"),
        Some(&1),
        "the retried request, whole"
    );
}

/// A shutdown timeout of `Duration::MAX` ("no limit") sends the spans still
/// open when the sink is dropped: `Instant + Duration::MAX` panicked in
/// `Drop` instead.
#[test]
fn a_shutdown_timeout_of_duration_max_sends_the_open_spans_at_drop() {
    let w = Flaky::default(); // with no failures in its pattern
    let mut sink = OtlpSink::to_writer(w.clone())
        .shutdown_timeout(std::time::Duration::MAX)
        .build()
        .unwrap();
    // An agent started (op 1, phase 0): held open.
    sink.send(&[encode(0, (0, 0, 1, 0, 0))]).unwrap();
    drop(sink);
    let out = w.out.lock().unwrap().clone();
    assert_eq!(
        ids_in(&out).get("e0"),
        Some(&1),
        "the unfinished span, sent"
    );
}
