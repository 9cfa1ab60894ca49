//! `ossa-events listen` keeps serving while 10 000 idle connections and
//! 1 000 slowloris connections (one header byte every 0.5 s) are open
//! against it: the issue that moved the receiver to hyper measured 0 of 20
//! requests served under 1 000 such connections.
//!
//! All on loopback. The hostile connections come from 24 addresses of
//! 127.0.0.0/8 (every one of them is loopback on Linux) so that the
//! per-address cap (1 000) does not turn them away by itself: the global cap
//! (10 000) is reached, and the oldest idle connections are closed to make
//! room. The valid requests come from 127.0.0.1, each on a new connection
//! (the worst case: it needs a slot), four clients at a time.
//!
//! Checked: at least 99 % of the 200 valid requests are answered `202`
//! within 1 s each; the listener's resident memory stays under
//! [`RSS_LIMIT_KIB`]; every event of an answered request is printed exactly
//! once, and nothing else is.
#![cfg(all(target_os = "linux", feature = "cli"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Listen, ev, post};
use tokio::io::AsyncWriteExt;

const IDLE: usize = 10_000;
const SLOW: usize = 1_000;
const VALID: usize = 200;
const CLIENTS: usize = 4;
/// The listener's resident set must stay below this (KiB): measured at
/// about 38 MiB for the debug build (10 MiB at start; an idle connection is
/// a task of well under 1 KiB plus its registry entry, about 1.6 KiB in all;
/// a slowloris one also has hyper's 8 KiB read buffer, about 13 KiB in all).
const RSS_LIMIT_KIB: u64 = 64 * 1024;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A connection to `to` from loopback address `from`.
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    s.connect(to).await
}

/// Opens `n` connections from `addrs` (round robin), at most 256 at a time.
async fn open_many(n: usize, addrs: &[Ipv4Addr], to: SocketAddr) -> Vec<tokio::net::TcpStream> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let batch: Vec<_> = (i..(i + 256).min(n))
            .map(|k| tokio::spawn(connect_from(addrs[k % addrs.len()], to)))
            .collect();
        for t in batch {
            out.push(t.await.unwrap().unwrap());
        }
        i += 256;
    }
    out
}

/// One valid request on a new connection: the status and how long the
/// answer took.
fn one_request(addr: SocketAddr, id: &str) -> (u16, Duration) {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = post("application/cloudevents+json", &ev(id));
    // Ask for the connection to close, so the read below ends with it.
    let at = req.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    req.splice(at..at, b"Connection: close\r\n".iter().copied());
    s.write_all(&req).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let status = std::str::from_utf8(resp.get(9..12).unwrap_or(b"000"))
        .unwrap_or("000")
        .parse()
        .unwrap_or(0);
    (status, t.elapsed())
}

#[test]
fn ten_thousand_idle_and_a_thousand_slowloris_connections_do_not_starve_valid_requests() {
    // The clients hold 11 000 sockets too.
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    assert!(
        soft > (IDLE + SLOW + 512) as u64,
        "this test needs an open-files limit above {} (ulimit -Hn), has {soft}",
        IDLE + SLOW + 512
    );
    let listen = Listen::start(&[], Duration::from_secs(10));
    let addr = listen.addr;
    let rss_before = rss_kib(listen.pid());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let idle_from: Vec<Ipv4Addr> = (0..20).map(|i| Ipv4Addr::new(127, 0, 1, 1 + i)).collect();
    let slow_from: Vec<Ipv4Addr> = (0..4).map(|i| Ipv4Addr::new(127, 0, 2, 1 + i)).collect();

    let idle = rt.block_on(open_many(IDLE, &idle_from, addr));
    let slow = rt.block_on(open_many(SLOW, &slow_from, addr));
    // Slowloris: one byte of a never-ending head every 0.5 s.
    let stop = Arc::new(AtomicBool::new(false));
    let slow_alive = Arc::new(AtomicUsize::new(SLOW));
    for mut s in slow {
        let (stop, alive) = (stop.clone(), slow_alive.clone());
        rt.spawn(async move {
            let head = b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let b = head.get(i).copied().unwrap_or(b'a');
                if s.write_all(&[b]).await.is_err() {
                    break;
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            alive.fetch_sub(1, Ordering::Relaxed);
        });
    }
    // Let the slowloris connections get going.
    std::thread::sleep(Duration::from_secs(1));

    // The valid requests, four clients at a time, while the attack goes on.
    let started = Instant::now();
    let results: Vec<(String, u16, Duration)> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                sc.spawn(move || {
                    (0..VALID / CLIENTS)
                        .map(|k| {
                            let id = format!("valid-{c}-{k}");
                            let (status, took) = one_request(addr, &id);
                            (id, status, took)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let attack_time = started.elapsed();
    let rss_during = rss_kib(listen.pid());
    let slowloris_still_open = slow_alive.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);

    let served: Vec<&(String, u16, Duration)> = results
        .iter()
        .filter(|(_, s, t)| *s == 202 && *t <= Duration::from_secs(1))
        .collect();
    let mut took: Vec<Duration> = results.iter().map(|r| r.2).collect();
    took.sort();
    eprintln!(
        "{} of {VALID} answered 202 within 1 s in {attack_time:?} (p50 {:?}, p99 {:?}, max {:?}); \
         listener RSS {rss_before} KiB before, {rss_during} KiB during; {slowloris_still_open} \
         slowloris connections still open",
        served.len(),
        took[took.len() / 2],
        took[took.len() * 99 / 100],
        took[took.len() - 1],
    );
    assert!(
        served.len() * 100 >= VALID * 99,
        "only {} of {VALID} valid requests were answered 202 within 1 s: {:?}",
        served.len(),
        results
            .iter()
            .filter(|(_, s, t)| *s != 202 || *t > Duration::from_secs(1))
            .take(10)
            .collect::<Vec<_>>()
    );
    assert!(
        rss_during < RSS_LIMIT_KIB,
        "listener RSS {rss_during} KiB over {RSS_LIMIT_KIB} KiB"
    );
    // The attack was real all along: the slowloris connections were still
    // being held open (their request deadline is 30 s).
    assert!(
        slowloris_still_open * 10 >= SLOW * 9,
        "{slowloris_still_open}"
    );

    // Every event of an answered request printed exactly once, nothing else.
    let answered: Vec<&String> = results
        .iter()
        .filter(|(_, s, _)| *s == 202)
        .map(|(id, _, _)| id)
        .collect();
    let mut printed: HashMap<String, usize> = HashMap::new();
    for line in listen.events(answered.len()) {
        let id = line["id"].as_str().unwrap().to_string();
        *printed.entry(id).or_default() += 1;
    }
    listen.no_more_lines();
    for id in &answered {
        assert_eq!(
            printed.get(*id),
            Some(&1),
            "{id} printed {:?} times",
            printed.get(*id)
        );
    }
    drop(idle);
    rt.shutdown_background();
}
