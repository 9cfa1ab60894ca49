//! `OssaLayer` beyond the happy path: a panic unwinding out of a span (a
//! tool that panics, on a thread or in a task of a multi-thread tokio
//! runtime), a span entered during that unwinding, and an `on_undelivered`
//! callback that logs at ERROR level on a thread inside spans.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ossa_events::sink::{Encoded, Sink, WriterSink};
use ossa_events::tracing_layer::OssaLayer;
use ossa_events::{Emitter, EventBuilder, Overflow, SendError, ossa};
use serde_json::Value;
use tracing::Instrument as _;
use tracing::instrument::WithSubscriber as _;
use tracing_subscriber::layer::SubscriberExt as _;

use common::Captured;

/// The events the spans `f` makes give, under a registry with an
/// `OssaLayer`.
fn events_of(f: impl FnOnce()) -> Vec<Value> {
    let out = Captured::default();
    let em = Emitter::builder("/agents/t")
        .sink(WriterSink::new(out.clone()))
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(em.clone()));
    tracing::subscriber::with_default(subscriber, f);
    em.flush().unwrap();
    out.events()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn of_type<'a>(events: &'a [Value], ty: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} in {events:#?}"))
}

/// A panic that unwinds out of a tool span and the agent span around it
/// fails both: `tool.failed` and `agent.failed`, not a `tool.completed`
/// and an `agent.completed` with `status: success` for work that never
/// finished.
#[test]
fn a_panic_out_of_a_span_fails_it() {
    let events = events_of(|| {
        let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = "a");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            agent.in_scope(|| {
                let tool = tracing::info_span!("execute_tool", gen_ai.tool.name = "t");
                let _in_tool = tool.enter();
                panic!("the tool blew up");
            })
        }));
        assert!(caught.is_err());
    });
    assert_eq!(
        types(&events),
        [
            ossa::AGENT_STARTED,
            ossa::TOOL_CALLED,
            ossa::TOOL_FAILED,
            ossa::AGENT_FAILED
        ]
    );
    let failed = of_type(&events, ossa::TOOL_FAILED);
    assert_eq!(failed["data"]["error"]["message"], "panicked");
    assert_eq!(failed["data"]["tool"], "t");
}

/// A panic caught inside the agent span fails the tool it unwound out of,
/// not the agent, which goes on.
#[test]
fn a_panic_caught_inside_a_span_leaves_it_going() {
    let events = events_of(|| {
        tracing::info_span!("invoke_agent", gen_ai.agent.name = "a").in_scope(|| {
            let caught = std::panic::catch_unwind(|| {
                tracing::info_span!("execute_tool", gen_ai.tool.name = "t")
                    .in_scope(|| panic!("the tool blew up"))
            });
            assert!(caught.is_err());
        });
    });
    assert_eq!(
        types(&events),
        [
            ossa::AGENT_STARTED,
            ossa::TOOL_CALLED,
            ossa::TOOL_FAILED,
            ossa::AGENT_COMPLETED
        ]
    );
}

/// A tool that panics in a task of a multi-thread runtime: the task's poll
/// unwinds out of the tool's span and the agent's, so both fail; a tool
/// running beside it (`join!`), dropped with the task's future once tokio
/// caught the panic, did not panic: it ends as a future given up on does.
#[test]
fn a_panic_in_a_task_fails_the_spans_it_unwinds_out_of() {
    let events = events_of(|| {
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = "a");
            let run = async {
                let panics = async {
                    tokio::task::yield_now().await;
                    panic!("the tool blew up");
                }
                .instrument(tracing::info_span!(
                    "execute_tool",
                    gen_ai.tool.name = "bad"
                ));
                let waits = async {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                }
                .instrument(tracing::info_span!(
                    "execute_tool",
                    gen_ai.tool.name = "slow"
                ));
                tokio::join!(panics, waits);
            }
            .instrument(agent)
            .with_subscriber(dispatch);
            assert!(tokio::spawn(run).await.unwrap_err().is_panic());
        });
    });
    let ended: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["type"] != ossa::TOOL_CALLED && e["type"] != ossa::AGENT_STARTED)
        .map(|e| (e["type"].as_str().unwrap(), e["subject"].as_str().unwrap()))
        .collect();
    assert_eq!(ended.len(), 3, "{events:#?}");
    assert!(ended.contains(&(ossa::TOOL_FAILED, "bad")), "{ended:?}");
    assert!(ended.contains(&(ossa::TOOL_COMPLETED, "slow")), "{ended:?}");
    assert_eq!(ended[2], (ossa::AGENT_FAILED, "a"), "{ended:?}");
}

/// Runs a tool span of its own when dropped (cleanup code).
struct CleansUp;

impl Drop for CleansUp {
    fn drop(&mut self) {
        tracing::info_span!("execute_tool", gen_ai.tool.name = "cleanup").in_scope(|| {});
    }
}

/// A span entered and left while the thread unwinds (cleanup code in a
/// `Drop`, a future dropped then) did not panic: it completes.
#[test]
fn a_span_entered_during_the_unwinding_completes() {
    let events = events_of(|| {
        let caught = std::panic::catch_unwind(|| {
            let _cleans_up = CleansUp;
            panic!("something blew up");
        });
        assert!(caught.is_err());
    });
    assert_eq!(types(&events), [ossa::TOOL_CALLED, ossa::TOOL_COMPLETED]);
}

/// A sink that hangs in `send` until released.
#[derive(Clone, Default)]
struct Stuck {
    release: Arc<AtomicBool>,
    out: Captured,
}

impl Sink for Stuck {
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        while !self.release.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(2));
        }
        for e in events {
            self.out.clone().write_all(e.json()).unwrap();
            self.out.clone().write_all(b"\n").unwrap();
        }
        Ok(())
    }
}

/// An `on_undelivered` callback that logs the lost event at ERROR level (a
/// common way to hear of them) runs on the thread whose event was dropped,
/// inside its spans; its log is about the emitter's delivery, not the
/// span's work: the agent span around the dropped `emit()` completes,
/// and so does the tool span whose own `tool.completed`, put off, the
/// emitter drops there.
#[test]
fn an_undelivered_callback_logging_an_error_fails_no_span() {
    let sink = Stuck::default();
    let em = Emitter::builder("/agents/t")
        .sink(sink.clone())
        .batch_size(1)
        .queue_capacity(1)
        .overflow(Overflow::DropNewest)
        .on_undelivered(|u| tracing::error!(id = u.id, "event not delivered"))
        .build()
        .unwrap();
    // The worker takes this one and hangs in the send: the queue is full.
    em.emit(EventBuilder::new().ty("dev.example.first"))
        .unwrap();
    assert!(common::wait_for(
        || em.metrics().queue_depth == 1,
        Duration::from_secs(10)
    ));
    let subscriber = tracing_subscriber::registry().with(OssaLayer::new(em.clone()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("invoke_agent", gen_ai.agent.name = "a").in_scope(|| {
            // agent.started is put off; this emit builds it first: both
            // find the queue full and are dropped, and reported.
            assert!(em.emit(EventBuilder::new().ty("dev.example.note")).is_err());
            // Room again: the agent's end goes out.
            sink.release.store(true, Ordering::Relaxed);
            em.flush().unwrap();
        });
    });
    em.flush().unwrap();
    let events = sink.out.events();
    let end = events.last().unwrap();
    assert_eq!(end["type"], ossa::AGENT_COMPLETED, "{events:#?}");
}
