//! With the `opentelemetry` feature and a `tracing_opentelemetry` layer on a
//! real OpenTelemetry SDK tracer: the OSSA events of a span carry the ids of
//! the OpenTelemetry span kept for it, with `OssaLayer` and, through
//! `context_from_tracing`, without it.
#![cfg(feature = "opentelemetry")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use ossa_events::sink::WriterSink;
use ossa_events::tracing_layer::{OssaLayer, current_span_ids};
use ossa_events::{Emitter, EventBuilder};
use serde_json::Value;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

use common::Captured as Shared;

fn events(out: &Shared) -> Vec<Value> {
    out.events()
}

/// The OpenTelemetry (trace id, span id) of a tracing span, as hex.
fn otel_ids(span: &tracing::Span) -> (String, String) {
    let cx = span.context();
    let s = cx.span();
    let sc = s.span_context();
    assert!(sc.is_valid());
    (
        format!("{:032x}", sc.trace_id()),
        format!("{:016x}", sc.span_id()),
    )
}

fn tracer() -> opentelemetry_sdk::trace::Tracer {
    opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .build()
        .tracer("ossa-events-test")
}

#[test]
fn ossa_layer_events_carry_the_opentelemetry_span_ids() {
    let out = Shared::default();
    let emitter = out.emitter("/agents/otel");
    // OpenTelemetry first, so it has each span before OssaLayer sees it.
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer()))
        .with(OssaLayer::new(emitter.clone()));
    let (agent_ids, tool_ids) = tracing::subscriber::with_default(subscriber, || {
        let agent = tracing::info_span!("invoke_agent", gen_ai.agent.name = "a");
        let tool = tracing::info_span!(parent: &agent, "execute_tool", gen_ai.tool.name = "t");
        agent.in_scope(|| tool.in_scope(|| {}));
        let ids = (otel_ids(&agent), otel_ids(&tool));
        // From inside the span, the same ids.
        let inside = tool.in_scope(current_span_ids).unwrap();
        assert_eq!(inside.span_id(), ids.1.1);
        ids
    });
    emitter.flush().unwrap();
    let ev = events(&out);
    assert_eq!(ev.len(), 4);
    assert_eq!(agent_ids.0, tool_ids.0, "one OpenTelemetry trace");
    for e in &ev {
        assert_eq!(e["ossatraceid"], agent_ids.0.as_str());
    }
    let agent_span = ev
        .iter()
        .find(|e| e["type"] == "dev.ossa.agent.started")
        .unwrap();
    let tool_span = ev
        .iter()
        .find(|e| e["type"] == "dev.ossa.tool.called")
        .unwrap();
    assert_eq!(agent_span["ossaspanid"], agent_ids.1.as_str());
    assert_eq!(tool_span["ossaspanid"], tool_ids.1.as_str());
    assert_eq!(
        tool_span["traceparent"],
        format!("00-{}-{}-01", tool_ids.0, tool_ids.1).as_str()
    );
}

#[test]
fn context_from_tracing_reads_opentelemetry_without_ossa_layer() {
    let out = Shared::default();
    let emitter = Emitter::builder("/agents/otel")
        .sink(WriterSink::new(out.clone()))
        .context_from_tracing(true)
        .build()
        .unwrap();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer()));
    let ids = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("handle_request");
        span.in_scope(|| {
            emitter
                .emit(EventBuilder::new().ty("dev.example.note"))
                .unwrap();
        });
        emitter
            .emit(EventBuilder::new().ty("dev.example.outside"))
            .unwrap();
        otel_ids(&span)
    });
    emitter.flush().unwrap();
    let ev = events(&out);
    assert_eq!(ev[0]["ossatraceid"], ids.0.as_str());
    assert_eq!(ev[0]["ossaspanid"], ids.1.as_str());
    assert_eq!(ev[1]["ossatraceid"], Value::Null);
}
