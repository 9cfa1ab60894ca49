//! A real agent process (`examples/spool_agent.rs`) emitting 100 000 events
//! through a disk spool to a collector is killed with SIGKILL three times at
//! random moments, twice while the collector is down. After the last run
//! drains, the collector holds every id that any run's `emit()` accepted: 0
//! lost. Duplicates come only from the batch in flight at each kill (at
//! most 3 × 100); the spool stays under its cap throughout. The runs
//! alternate between a spool written through a memory map and one written
//! with `write(2)`, so each reads what the other left.
#![cfg(all(unix, feature = "http", feature = "receiver"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::example;
use ossa_events::Event;
use ossa_events::receiver::{Receiver, ReceiverConfig, ReceiverHandle};

const TOTAL: u64 = 100_000;
/// The agent's spool cap (see the example) plus one segment of slack for the
/// segment being written.
const CAP: u64 = (64 << 20) + (1 << 20);

/// Per id: how many times it arrived, and its `sequence` numbers.
type Seen = Arc<Mutex<HashMap<String, (u32, Vec<u64>)>>>;

fn collector(addr: &str, seen: &Seen) -> ReceiverHandle {
    try_collector(addr, seen).unwrap()
}

fn try_collector(addr: &str, seen: &Seen) -> std::io::Result<ReceiverHandle> {
    let seen = seen.clone();
    Ok(Receiver::bind(addr, ReceiverConfig::new())?
        .spawn(move |ev: &Event<'_>| {
            let n = ev
                .extension("sequence")
                .and_then(|v| v.as_str()?.parse::<u64>().ok())
                .unwrap_or(0);
            let mut seen = seen.lock().unwrap();
            let e = seen.entry(ev.id().to_owned()).or_default();
            e.0 += 1;
            if !e.1.contains(&n) {
                e.1.push(n);
            }
        })
        .unwrap())
}

/// Starts the agent for ids `first..first+count`; a thread collects the
/// ids it says `emit()` accepted.
fn agent(
    dir: &Path,
    addr: SocketAddr,
    first: u64,
    count: u64,
    mapped: bool,
) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(example("spool_agent"))
        .arg(dir)
        .arg(format!("http://{addr}/events"))
        .arg(first.to_string())
        .arg(count.to_string())
        .args(mapped.then_some("mapped"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let acc = accepted.clone();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if let Some(id) = line.strip_prefix("accepted ") {
                acc.lock().unwrap().push(id.to_owned());
            } else {
                acc.lock().unwrap().push(line);
            }
        }
    });
    (child, accepted)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Waits for the stdout thread to have read everything the killed child wrote.
fn settled(acc: &Mutex<Vec<String>>) -> Vec<String> {
    let mut last = usize::MAX;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let n = acc.lock().unwrap().len();
        if n == last {
            return acc.lock().unwrap().clone();
        }
        last = n;
    }
}

#[test]
fn every_accepted_event_arrives_through_three_kill_9s_and_an_outage() {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("spool_kill9_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let seen: Seen = Arc::default();
    // The collector is started again on this port after each outage: one
    // below the ephemeral range, which no other socket can be given while
    // it is down (an ephemeral one could, and the restart failed).
    // (Free when looked at, it was once taken before the bind: the next.)
    let base = common::tansu::free_port_for_later();
    let rx = (0..64u16)
        .filter_map(|i| base.checked_add(i))
        .find_map(|port| try_collector(&format!("127.0.0.1:{port}"), &seen).ok())
        .expect("no loopback port from the one found free could be bound");
    let addr = rx.local_addr();
    let mut collector_up = Some(rx);

    // The spool's size, sampled all along.
    let stop = Arc::new(AtomicBool::new(false));
    let max_disk = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, max_disk, dir) = (stop.clone(), max_disk.clone(), dir.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                max_disk.fetch_max(dir_bytes(&dir), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let mut rng = fastrand::Rng::with_seed(
        std::env::var("SPOOL_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fastrand::u64(..)),
    );
    eprintln!("seed {} (SPOOL_KILL_SEED to repeat)", rng.get_seed());
    let mut accepted: HashSet<String> = HashSet::new();
    let mut next = 0u64;
    // Run 1 with the collector up; runs 2 and 3 with it down (the spool
    // fills), brought back before run 3 is killed; run 4 drains. Runs 1
    // and 3 write the spool through a memory map, runs 2 and 4 with
    // `write(2)`: each reads what the other way left when it was killed.
    let mapped = |run: u32| run.is_multiple_of(2);
    for run in 0..3 {
        if run == 1 {
            collector_up.take().unwrap().shutdown();
        }
        let (mut child, acc) = agent(&dir, addr, next, TOTAL - next, mapped(run));
        // Opening a spool reads all of it (longer the more an earlier run
        // left): the random moment counts from the first accepted event.
        let opened = Instant::now();
        while acc.lock().unwrap().is_empty() {
            assert!(
                opened.elapsed() < Duration::from_secs(120),
                "run {run} accepted nothing in 2 minutes"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let kill_after = Duration::from_millis(rng.u64(0..700));
        std::thread::sleep(kill_after);
        if run == 2 {
            // Up again mid-run: replay and new events flow, then the kill.
            collector_up = Some(collector(&addr.to_string(), &seen));
            std::thread::sleep(Duration::from_millis(rng.u64(50..400)));
        }
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        let ids = settled(&acc);
        let n = ids.len() as u64;
        eprintln!(
            "run {run} ({}): opened in {:?}, killed {kill_after:?} after its first event, {n} accepted",
            if mapped(run) { "mapped" } else { "write(2)" },
            opened.elapsed().saturating_sub(kill_after)
        );
        assert!(n > 0, "run {run} accepted nothing before the kill");
        next += n;
        accepted.extend(ids);
        assert!(
            next < TOTAL,
            "the agent finished before it was killed; slow it down"
        );
    }
    let collector = match collector_up {
        Some(c) => c,
        None => collector(&addr.to_string(), &seen),
    };
    // The last run: the rest, then drain and exit.
    let (mut child, acc) = agent(&dir, addr, next, TOTAL - next, mapped(3));
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "last run hangs"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines = settled(&acc);
    assert!(status.success(), "{status:?}: {:?}", lines.last());
    let done = lines.last().cloned().unwrap_or_default();
    assert!(done.starts_with("done "), "{done}");
    accepted.extend(lines.into_iter().filter(|l| !l.starts_with("done ")));
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let stats = collector.shutdown();

    assert_eq!(
        accepted.len() as u64,
        TOTAL,
        "every id was accepted by some run"
    );
    let seen = seen.lock().unwrap();
    let lost: Vec<&String> = accepted
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .collect();
    let dups: u32 = seen.values().map(|(c, _)| c - 1).sum();
    eprintln!(
        "{} ids accepted, {} received, {} lost, {dups} duplicates, {} requests; spool at most {} KiB; {done}",
        accepted.len(),
        seen.len(),
        lost.len(),
        stats.requests,
        max_disk.load(Ordering::Relaxed) / 1024
    );
    assert!(
        lost.is_empty(),
        "{} lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(
        seen.keys().all(|id| accepted.contains(id)),
        "an id nobody emitted"
    );
    // Duplicates only from the batch in flight at each kill (the HTTP sink
    // sends one batch of at most 100 at a time): confirmations are logged as
    // they happen, not only at the next ledger write.
    assert!(dups <= 3 * 100, "{dups} duplicates");
    assert!(max_disk.load(Ordering::Relaxed) <= CAP);
    // The `sequence` numbers go on across the runs, 1, 2, … with no gap
    // and each on one id: a receiver can prove it has every event. (An id
    // carries two numbers when a run was killed after its emit() returned
    // but before it printed `accepted`: the next run emitted it again. At
    // most one per kill.)
    let mut numbers: Vec<u64> = seen.values().flat_map(|(_, n)| n.iter().copied()).collect();
    numbers.sort_unstable();
    let twice = numbers.len() as u64 - seen.len() as u64;
    assert!(twice <= 3, "{twice} ids emitted twice");
    assert!(
        numbers.iter().copied().eq(1..=numbers.len() as u64),
        "numbers are not 1..={}: first {:?}, last {:?}",
        numbers.len(),
        numbers.first(),
        numbers.last()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file-size limit (`ulimit -f`) below the segment size, in a program
/// that, like most, leaves SIGXFSZ at its default (which ends the process):
/// a mapped spool must not reserve past the limit (that raises the signal
/// too), but write its segments as the `write(2)` spool does, which works
/// until a segment reaches the limit. 100 events stay well under it.
#[test]
fn a_mapped_spool_under_a_file_size_limit_below_a_segment_is_not_killed() {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("spool_fsize_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let seen: Seen = Arc::default();
    let rx = collector("127.0.0.1:0", &seen);
    // 512 KiB: half the agent's 1 MiB segments.
    let out = Command::new("bash")
        .arg("-c")
        .arg("ulimit -f 512; exec \"$0\" \"$@\"")
        .arg(example("spool_agent"))
        .arg(&dir)
        .arg(format!("http://{}/events", rx.local_addr()))
        .args(["0", "100", "mapped"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}: {}{}",
        out.status,
        stdout.lines().last().unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("accepted "))
            .count(),
        100
    );
    rx.shutdown();
    assert_eq!(seen.lock().unwrap().len(), 100);
    let _ = std::fs::remove_dir_all(&dir);
}
