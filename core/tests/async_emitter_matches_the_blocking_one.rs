//! The async emitter over embedded_io_async::Write: same batching, same guarantees.
#![cfg(feature = "async")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use ossa_events_core::batch::{BatchFormat, DrainError};
use ossa_events_core::emitter::{AsyncEmitter, Config, EmitError};
use ossa_events_core::parse::json::BatchParser;
use ossa_events_core::{FixedClock, RandomIds, Timestamp, ossa};

/// Polls a future to completion; the fake writer is always ready, but it
/// returns Pending once per write to prove the emitter copes with suspension.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("future never completed");
}

struct Yield(bool);
impl Future for Yield {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Down;
impl core::fmt::Display for Down {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("down")
    }
}
impl std::error::Error for Down {}
impl embedded_io_async::Error for Down {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        embedded_io_async::ErrorKind::BrokenPipe
    }
}

#[derive(Default)]
struct Link {
    up: bool,
    pending: Vec<u8>,
    delivered: Vec<u8>,
}
impl embedded_io_async::ErrorType for Link {
    type Error = Down;
}
impl embedded_io_async::Write for Link {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Down> {
        Yield(false).await;
        if !self.up {
            return Err(Down);
        }
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }
    async fn flush(&mut self) -> Result<(), Down> {
        if !self.up {
            self.pending.clear();
            return Err(Down);
        }
        let p = std::mem::take(&mut self.pending);
        self.delivered.extend_from_slice(&p);
        Ok(())
    }
}

#[test]
fn batches_retries_and_delivers_everything() {
    let clock = FixedClock(Timestamp::parse("2026-11-25T12:00:00Z").unwrap());
    let mut n = 0u128;
    let ids = RandomIds(move |b: &mut [u8; 16]| {
        n += 1;
        *b = n.to_le_bytes();
    });
    let config = Config::new("/dev/async")
        .batch_size(3)
        .format(BatchFormat::JsonBatch);
    let mut em: AsyncEmitter<'_, _, _, _, 4, 4096> =
        AsyncEmitter::new(config, Link::default(), ids, clock);
    block_on(async {
        em.writer_mut().up = false;
        for i in 0..4 {
            em.emit_ossa(&ossa::TurnStarted {
                turn: i,
                input: None,
            })
            .await
            .unwrap();
        }
        // N = 4 reached with the link down: the next event is refused and counted.
        let err = em
            .emit_ossa(&ossa::TurnStarted {
                turn: 9,
                input: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, EmitError::Full(DrainError::Io(Down))));
        em.writer_mut().up = true;
        assert_eq!(em.flush().await.unwrap(), 4);
        assert_eq!(em.poll(clock.0).await.unwrap(), 0);
    });
    let c = em.counters();
    assert_eq!((c.emitted, c.delivered, c.dropped), (4, 4, 1));
    assert!(c.failed_writes >= 1);
    let Ok(w) = em.into_writer() else {
        panic!("every event was delivered")
    };
    let bytes = w.delivered;
    let mut p = BatchParser::new(&bytes).unwrap();
    let mut buf = vec![0u8; 1024];
    let mut turns = Vec::new();
    while let Some(ev) = p.next_event(&mut buf) {
        let ev = ev.unwrap();
        assert_eq!(ev.ty(), ossa::TURN_STARTED);
        turns.push(ev.id().to_string());
    }
    assert_eq!(turns.len(), 4);
}
