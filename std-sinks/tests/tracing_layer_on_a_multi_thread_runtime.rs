//! `OssaLayer` under instrumented async functions on a multi-thread tokio
//! runtime: spans entered and exited at every `.await`, their polls moving
//! between threads, some futures dropped before they end. Each GenAI span
//! gives one start and one end event, an event emitted inside a span comes
//! after that span's start, and every event is counted once.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ossa_events::sink::{Encoded, Sink};
use ossa_events::tracing_layer::OssaLayer;
use ossa_events::{Emitter, EventBuilder, SendError, ossa};
use serde_json::Value;
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Clone, Default)]
struct Keep(Arc<Mutex<Vec<Value>>>);

impl Sink for Keep {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        kept.extend(
            events
                .iter()
                .map(|e| serde_json::from_slice::<Value>(e.json()).unwrap()),
        );
        Ok(())
    }
}

/// A tool's work: awaits (its polls may move between threads) and an
/// event of its own, emitted inside its span.
async fn tool(em: Emitter, call: String) {
    tokio::time::sleep(Duration::from_millis(1)).await;
    em.emit(EventBuilder::new().ty("dev.example.inside").subject(&call))
        .unwrap();
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// An agent: three tools one after another, then one given up on.
async fn agent(em: Emitter, i: usize) {
    let name = format!("a{i}");
    let span = tracing::info_span!("invoke_agent", gen_ai.agent.name = name.as_str());
    async {
        for t in 0..3 {
            let call = format!("{name}-c{t}");
            let tspan = tracing::info_span!(
                "execute_tool",
                gen_ai.tool.name = "search",
                gen_ai.tool.call.id = call.as_str()
            );
            tool(em.clone(), call).instrument(tspan).await;
        }
        // A tool given up on mid-way: its span closes with the dropped future.
        let call = format!("{name}-cancelled");
        let tspan = tracing::info_span!(
            "execute_tool",
            gen_ai.tool.name = "slow",
            gen_ai.tool.call.id = call.as_str()
        );
        let slow = async {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        .instrument(tspan);
        let _ = tokio::time::timeout(Duration::from_millis(2), slow).await;
    }
    .instrument(span)
    .await;
}

#[test]
fn instrumented_async_spans_on_a_multi_thread_runtime_start_and_end_once() {
    let kept = Keep::default();
    let emitter = Emitter::builder("/agents/mt")
        .sink(kept.clone())
        .context_from_tracing(true)
        .batch_size(16)
        .wait_on_drop(false)
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(emitter.clone()));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    const AGENTS: usize = 24;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let report = rt.block_on(async {
        let tasks: Vec<_> = (0..AGENTS)
            .map(|i| tokio::spawn(agent(emitter.clone(), i)))
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        emitter.flush_async().await.unwrap();
        emitter.shutdown_async().await.unwrap()
    });
    let events = kept
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let m = emitter.metrics();
    // Per agent: started, completed; per tool (4): called, completed; and
    // 3 events emitted inside tools.
    let per_agent = 2 + 4 * 2 + 3;
    assert_eq!(events.len(), AGENTS * per_agent, "{m:?}");
    assert_eq!(
        (m.emitted, m.delivered, m.dropped, m.rejected, m.failed),
        (
            (AGENTS * per_agent) as u64,
            (AGENTS * per_agent) as u64,
            0,
            0,
            0
        )
    );
    assert_eq!(report.delivered, (AGENTS * per_agent) as u64);

    let mut count: HashMap<(String, String), usize> = HashMap::new();
    let mut called_at: HashMap<String, usize> = HashMap::new();
    for (at, e) in events.iter().enumerate() {
        let ty = e["type"].as_str().unwrap().to_owned();
        let key = match ty.as_str() {
            ossa::TOOL_CALLED | ossa::TOOL_COMPLETED => {
                e["data"]["call_id"].as_str().unwrap().to_owned()
            }
            ossa::AGENT_STARTED | ossa::AGENT_COMPLETED => {
                e["ossaagentid"].as_str().unwrap().to_owned()
            }
            "dev.example.inside" => e["subject"].as_str().unwrap().to_owned(),
            other => panic!("unexpected {other}: {e}"),
        };
        if ty == ossa::TOOL_CALLED {
            called_at.insert(e["ossaspanid"].as_str().unwrap().to_owned(), at);
        }
        if ty == "dev.example.inside" {
            let span = e["ossaspanid"].as_str().unwrap();
            let called = called_at.get(span).copied();
            assert!(called.is_some_and(|c| c < at), "{e} before its tool.called");
        }
        *count.entry((ty, key)).or_default() += 1;
    }
    assert!(count.values().all(|&n| n == 1), "{count:?}");
}
