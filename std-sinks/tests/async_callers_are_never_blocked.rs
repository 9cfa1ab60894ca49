//! An emitter used from async code on a tokio current-thread runtime (one
//! thread for every task): with a dead collector, dropping the last handle
//! (`wait_on_drop(false)`), `flush_async` and `shutdown_async` leave another
//! task's timer firing on time, and every event still ends in exactly one
//! place, counted and reported.
#![cfg(all(feature = "http", feature = "receiver"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ossa_events::receiver::{Receiver, ReceiverConfig};
use ossa_events::sink::HttpSink;
use ossa_events::{Emitter, Event, EventBuilder, Reason};

/// A loopback URL where nothing listens.
fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/events")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Ticks every 10 ms until `stop`; returns the largest gap between ticks.
async fn ticker(stop: Instant) -> Duration {
    let mut last = Instant::now();
    let mut worst = Duration::ZERO;
    while Instant::now() < stop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = Instant::now();
        worst = worst.max(now - last);
        last = now;
    }
    worst
}

/// An emitter to `url` that counts what it reports undelivered, by reason.
fn emitter(url: &str, shutdown: Duration) -> (Emitter, Arc<Mutex<Vec<Reason>>>) {
    let reasons: Arc<Mutex<Vec<Reason>>> = Arc::default();
    let r2 = reasons.clone();
    let em = Emitter::builder("/agents/async")
        .sink(
            HttpSink::builder(url)
                .timeout(Duration::from_millis(200))
                .build()
                .unwrap(),
        )
        .shutdown_timeout(shutdown)
        .wait_on_drop(false)
        .on_undelivered(move |u| {
            r2.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(u.reason)
        })
        .build()
        .unwrap();
    (em, reasons)
}

#[test]
fn dropping_the_last_handle_in_a_task_does_not_stall_the_runtime() {
    let rt = runtime();
    let (worst, drop_took, reasons) = rt.block_on(async {
        let stop = Instant::now() + Duration::from_millis(2500);
        let tick = tokio::spawn(ticker(stop));
        let (em, reasons) = emitter(&dead_url(), Duration::from_secs(2));
        for _ in 0..20 {
            em.emit(EventBuilder::new().ty("dev.example.tick")).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        drop(em);
        let drop_took = started.elapsed();
        let worst = tick.await.unwrap();
        (worst, drop_took, reasons)
    });
    // Generous bounds: a blocking drop would take the 2 s shutdown timeout.
    assert!(
        drop_took < Duration::from_millis(250),
        "drop blocked for {drop_took:?}"
    );
    assert!(
        worst < Duration::from_millis(500),
        "a tick came {worst:?} late"
    );
    // The worker gave up on its own by the shutdown deadline (2 s after the
    // drop): every event ended, once.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let n = reasons.lock().unwrap_or_else(PoisonError::into_inner).len();
        if n == 20 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let reasons = reasons
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert_eq!(reasons.len(), 20, "{reasons:?}");
    assert!(
        reasons.iter().all(|r| *r == Reason::ShutdownTimeout),
        "{reasons:?}"
    );
}

#[test]
fn flush_async_and_shutdown_async_wait_without_blocking() {
    // A live collector: flush_async sees every event delivered.
    let got = Arc::new(AtomicUsize::new(0));
    let g2 = got.clone();
    let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())
        .unwrap()
        .spawn(move |_: &Event<'_>| {
            g2.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let url = format!("http://{}/events", rx.local_addr());
    let rt = runtime();
    rt.block_on(async {
        let (em, _) = emitter(&url, Duration::from_secs(5));
        for _ in 0..50 {
            em.emit(EventBuilder::new().ty("dev.example.tick")).unwrap();
        }
        let report = em.flush_async().await.unwrap();
        assert_eq!(report.delivered, 50);
        assert_eq!(got.load(Ordering::SeqCst), 50);
        let report = em.shutdown_async().await.unwrap();
        assert_eq!(report.delivered, 50);
        assert!(
            em.emit(EventBuilder::new().ty("late")).is_err(),
            "shut down"
        );
    });
    drop(rx);

    // A dead collector: shutdown_async resolves at its deadline, and a timer
    // on the same thread keeps ticking meanwhile.
    let (worst, took, report) = rt.block_on(async {
        let stop = Instant::now() + Duration::from_millis(1200);
        let tick = tokio::spawn(ticker(stop));
        let (em, _) = emitter(&dead_url(), Duration::from_millis(800));
        for _ in 0..10 {
            em.emit(EventBuilder::new().ty("dev.example.tick")).unwrap();
        }
        let started = Instant::now();
        let report = em.shutdown_async().await;
        let took = started.elapsed();
        (tick.await.unwrap(), took, report)
    });
    assert!(
        worst < Duration::from_millis(500),
        "a tick came {worst:?} late"
    );
    assert!(
        took < Duration::from_secs(3),
        "shutdown_async took {took:?}"
    );
    // Past the deadline: the timeout error, or a report with nothing delivered.
    if let Ok(r) = report {
        assert_eq!(r.delivered, 0);
        assert_eq!(r.shutdown_timeout + r.failed, 10);
    }
}
