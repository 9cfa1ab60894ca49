//! Issue 4: the cost of emitting into the no_std batch, against encoding the
//! same event with the core formatter alone.
//!
//! cargo bench -p ossa-events-tests --bench emitter
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ossa_events::emitter::{Config, Emitter};
use ossa_events::io::Counter;
use ossa_events::{Event, FixedClock, IdSource, RandomIds, RawJson, Timestamp, format::json, ossa};

const ARGS: &str = r#"{"query":"cloudevents no_std embedded","max_results":5,"filters":{"lang":"en","since":"2025-01-01"}}"#;

fn ids() -> RandomIds<impl FnMut(&mut [u8; 16])> {
    let mut n: u128 = 0x1234_5678;
    RandomIds(move |b: &mut [u8; 16]| {
        n = n.wrapping_mul(0x2545_F491_4F6C_DD1D).wrapping_add(1);
        *b = n.to_le_bytes();
    })
}

fn bench(c: &mut Criterion) {
    let clock = FixedClock(Timestamp::parse("2026-11-25T15:24:00.123456Z").unwrap());
    let call = ossa::ToolCalled {
        tool: "web_search",
        call_id: Some("call-1"),
        arguments: Some(RawJson::new(ARGS).unwrap()),
    };
    let ctx = ossa::Context {
        agent_id: Some("researcher"),
        interaction_id: Some("int-7f3a9c"),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        span_id: Some("00f067aa0ba902b7"),
    };

    // The bytes one event takes.
    let mut ids0 = ids();
    let id = ids0.next_id();
    let ev = Event::builder()
        .id(id.as_str())
        .source("/agents/researcher")
        .time(clock.0)
        .ossa_context(&ctx)
        .ossa(&call)
        .build()
        .unwrap();
    let size = json::encoded_len(&ev).unwrap();
    println!("event: {size} bytes of compact JSON");

    let mut g = c.benchmark_group("emit_vs_encode");
    g.throughput(criterion::Throughput::Bytes(size as u64));
    g.bench_function("formatter_alone (id + build + to_slice)", |b| {
        let mut ids = ids();
        let mut buf = [0u8; 1024];
        b.iter(|| {
            let id = ids.next_id();
            let ev = Event::builder()
                .id(id.as_str())
                .source("/agents/researcher")
                .time(clock.0)
                .ossa_context(&ctx)
                .ossa(black_box(&call))
                .build()
                .unwrap();
            black_box(json::to_slice(&ev, &mut buf).unwrap())
        })
    });
    g.bench_function("emitter.emit_ossa into Batch<64, 64 KiB>", |b| {
        let mut em: Emitter<'_, _, _, _, 64, 65536> = Emitter::new(
            Config::new("/agents/researcher").batch_size(64),
            Counter::default(),
            ids(),
            clock,
        );
        em.set_context(ctx);
        b.iter(|| em.emit_ossa(black_box(&call)).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(4)).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
