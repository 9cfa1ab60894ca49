//! A spool reopened run after run with another configuration each time
//! (written with `write(2)` or through a map, another segment size, another
//! sync policy, a small or large memory queue) and another sink (JSON, HTTP
//! binary, Kafka binary, taking structured events or not), which answers
//! each event of each batch at random: delivered, to retry, or failed for
//! good. Confirmations are then sparse across segments. Each run ends with
//! events still retrying; the next sends them. At the end every event that
//! `emit()` accepted was delivered or failed exactly once, with its own id,
//! its data and its `sequence` number unchanged through re-encoding, no
//! number given twice, and `replayed` counts exactly what was left over.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod spool_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ossa_events::sink::{Encoded, Encoding, Sink};
use ossa_events::spool::{SpoolConfig, SyncPolicy, WhenFull};
use ossa_events::{Error, EventBuilder, Reason, Retry, RetryPolicy, SendError};

use spool_support::quick;

#[derive(Default)]
struct Log {
    /// Per id: times delivered.
    delivered: HashMap<String, u32>,
    /// Per id: its canonical JSON as the sink first saw it.
    seen: HashMap<String, String>,
    /// Per id: its sequence number.
    numbers: HashMap<String, u64>,
    problems: Vec<String>,
}

/// A sink that answers each event at random.
struct Mixed {
    encoding: Encoding,
    structured: bool,
    rng: fastrand::Rng,
    /// Percent delivered, percent retried (the rest fail for good).
    odds: (u8, u8),
    log: Arc<Mutex<Log>>,
}

/// `e` read back into an event, written as JSON (its `id` first).
fn canonical(e: &Encoded) -> Result<(String, Option<u64>), String> {
    use ossa_events::parse;
    let mut buf = vec![0u8; 64 * 1024];
    let mut scratch = ossa_events::Scratch::new(&mut buf);
    let mut headers: Vec<(&str, &[u8])> = e.headers().map(|(n, v)| (n, v.as_bytes())).collect();
    if let Some(ct) = e.content_type() {
        headers.push(("content-type", ct.as_bytes()));
    }
    let ev = match e.encoding() {
        Encoding::Json => parse::json::parse_event(e.json(), &mut scratch),
        Encoding::HttpBinary => parse::http::parse_binary(headers, e.body(), &mut scratch),
        Encoding::KafkaBinary => {
            let value = e.has_data().then(|| e.body());
            parse::kafka::parse(headers, None, value, &mut scratch).map(|r| r.event)
        }
        other => return Err(format!("{}: encoding {other:?}", e.id())),
    }
    .map_err(|err| format!("{}: {err}", e.id()))?;
    let n = ev
        .extension("sequence")
        .and_then(|v| v.as_str()?.parse::<u64>().ok());
    let json = Encoded::new(&ev, Encoding::Json).map_err(|err| err.to_string())?;
    let mut json = String::from_utf8(json.json().to_vec()).unwrap();
    // Empty data: an empty HTTP body reads as none, `has_data` tells it.
    for empty in [r#","data":""}"#, r#","data_base64":""}"#] {
        if let Some(rest) = json.strip_suffix(empty) {
            json = format!("{rest},empty data}}");
        }
    }
    if e.encoding() == Encoding::HttpBinary && e.has_data() && e.body().is_empty() {
        json = format!("{},empty data}}", json.trim_end_matches('}'));
    }
    Ok((json, n))
}

impl Sink for Mixed {
    fn encoding(&self) -> Encoding {
        self.encoding
    }
    fn takes_structured(&self) -> bool {
        self.structured
    }
    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        let mut err: Option<SendError> = None;
        let mut log = self.log.lock().unwrap();
        for (i, e) in events.iter().enumerate() {
            let ok_encoding = e.encoding() == self.encoding
                || (self.structured && e.encoding() == Encoding::Json);
            if !ok_encoding {
                log.problems.push(format!(
                    "{}: {:?} handed to a {:?} sink (structured {})",
                    e.id(),
                    e.encoding(),
                    self.encoding,
                    self.structured
                ));
            }
            match canonical(e) {
                Ok((json, n)) => {
                    let id = e.id().to_owned();
                    match log.seen.get(&id) {
                        Some(first) if first[first.find('{').unwrap()..] != json => {
                            let p = format!(
                                "{id} changed:\n  {first}\n  {:?}/{} {json}",
                                e.encoding(),
                                self.structured
                            );
                            log.problems.push(p);
                        }
                        Some(_) => {}
                        None => {
                            log.seen
                                .insert(id.clone(), format!("{:?} {json}", e.encoding()));
                        }
                    }
                    if let Some(n) = n {
                        log.numbers.insert(id, n);
                    }
                }
                Err(p) => log.problems.push(format!("unreadable: {p}")),
            }
            let roll = self.rng.u8(0..100);
            let failure = if roll < self.odds.0 {
                None
            } else if roll < self.odds.0 + self.odds.1 {
                Some(Retry::LATER)
            } else {
                Some(Retry::No)
            };
            match failure {
                None => *log.delivered.entry(e.id().to_owned()).or_default() += 1,
                Some(retry) => {
                    let f = Error::Transport(format!("mixed {i}"));
                    err = Some(match err {
                        None => SendError::at(i..i + 1, retry, f),
                        Some(s) => s.and(i..i + 1, retry, f),
                    });
                }
            }
        }
        err.map_or(Ok(()), Err)
    }
}

static BIG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn event(id: &str, kind: u64) -> EventBuilder<'_> {
    let b = EventBuilder::new().ty("dev.example.mixed").id(id);
    match kind % 11 {
        7 => b
            .data_json(r#"{"k":"v"}"#)
            .datacontenttype("application/vnd.x+json"),
        8 => b.extension_str("comexampleext", "a%20b \"q\" ü\\ /%"),
        9 => b.subject(BIG.get_or_init(|| "s".repeat(9000))),
        10 => b.data_text("application/json", "plain text under a JSON type"),
        0 => b,
        1 => b.data_text("text/plain", "hello, world"),
        2 => b.data_json(r#"{"a":[1,2,{"b":"c\u00e9"}]}"#),
        3 => b.data_binary("application/octet-stream", &[0, 1, 2, 255, 254]),
        4 => b.data_text("text/plain", ""),
        5 => b.data_binary("application/octet-stream", &[]),
        _ => b.subject("Euro € / 100%").data_text("text/plain", "x"),
    }
}

#[test]
fn every_event_comes_back_exactly_once_through_changed_configs_and_mixed_answers() {
    let seed = std::env::var("SPOOL_MIXED_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("SPOOL_MIXED_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("spool_mixed_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let log: Arc<Mutex<Log>> = Arc::default();
    let failed: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let mut accepted: Vec<String> = Vec::new();
    let rounds = 8;
    for round in 0..=rounds {
        let last = round == rounds;
        let encodings = [Encoding::Json, Encoding::HttpBinary, Encoding::KafkaBinary];
        let encoding = encodings[rng.usize(..3)];
        let structured = encoding != Encoding::Json && rng.bool();
        let mapped = rng.bool();
        let segment = [4096u64, 8192, 65536][rng.usize(..3)];
        let sync = [
            SyncPolicy::Always,
            SyncPolicy::Never,
            SyncPolicy::Every(Duration::from_millis(2)),
        ][rng.usize(..3)];
        let queue = [4usize, 64, 10_000][rng.usize(..3)];
        // Smaller than what the runs before left, at times.
        let cap = if last {
            1 << 30
        } else {
            [1u64 << 30, 24 << 10, 64 << 10][rng.usize(..3)]
        };
        let when_full = [
            WhenFull::DropOldest,
            WhenFull::DropNewest,
            WhenFull::Block(Duration::from_millis(5)),
        ][rng.usize(..3)];
        let odds = if last { (100, 0) } else { (50, 40) };
        let sink = Mixed {
            encoding,
            structured,
            rng: fastrand::Rng::with_seed(rng.u64(..)),
            odds,
            log: log.clone(),
        };
        let f = failed.clone();
        // Left over by the runs before (counted before this emitter sends any): not delivered, not failed.
        let expected_replay = {
            let l = log.lock().unwrap();
            let fl = failed.lock().unwrap();
            accepted
                .iter()
                .filter(|id| !l.delivered.contains_key(*id) && !fl.contains_key(*id))
                .count() as u64
        };
        let em = quick("/agents/mixed")
            .sequence(true)
            .queue_capacity(queue)
            .retry(
                RetryPolicy::default()
                    .max_attempts(if last { 50 } else { 4 })
                    .base(Duration::from_millis(if last { 1 } else { 40 }))
                    .cap(Duration::from_millis(if last { 5 } else { 200 })),
            )
            .sink(sink)
            .spool(
                SpoolConfig::new(&d)
                    .mapped(mapped)
                    .segment_bytes(segment)
                    .max_bytes(cap)
                    .when_full(when_full)
                    .sync(sync),
            )
            .on_undelivered(move |u| {
                if matches!(
                    u.reason,
                    Reason::Failed | Reason::Dropped | Reason::ShutdownTimeout
                ) {
                    *f.lock().unwrap().entry(u.id.to_owned()).or_default() += 1;
                }
            })
            .build()
            .unwrap();
        let replayed = em.metrics().replayed;
        eprintln!(
            "round {round}: {encoding:?} structured {structured} mapped {mapped} segment {segment} cap {cap} {when_full:?} {sync:?} queue {queue}: replayed {replayed}"
        );
        if replayed != expected_replay {
            log.lock().unwrap().problems.push(format!(
                "round {round}: replayed {replayed}, {expected_replay} left over"
            ));
        }
        if !last {
            for i in 0..300u64 {
                let id = format!("r{round}-{i:04}");
                if em.emit(event(&id, i)).is_ok() {
                    accepted.push(id);
                }
            }
            std::thread::sleep(Duration::from_millis(rng.u64(0..60)));
        } else {
            em.flush_within(Duration::from_secs(30)).unwrap();
        }
        em.shutdown().unwrap_or_default();
        spool_support::wait_until_unlocked(&d);
        let m = em.metrics();
        eprintln!("  {m:?}");
        let ended = m.delivered + m.failed + m.shutdown_timeout + m.spooled + m.evicted;
        if m.emitted + m.replayed != ended + m.queue_depth {
            log.lock().unwrap().problems.push(format!(
                "round {round}: {} emitted + {} replayed, {ended} ended: {m:?}",
                m.emitted, m.replayed
            ));
        }
        drop(em);
    }
    let l = log.lock().unwrap();
    let fl = failed.lock().unwrap();
    let mut problems = l.problems.clone();
    for id in &accepted {
        let d = l.delivered.get(id).copied().unwrap_or(0);
        let f = fl.get(id).copied().unwrap_or(0);
        if d + f != 1 {
            problems.push(format!("{id}: delivered {d}, failed {f}"));
        }
    }
    let mut by_number: HashMap<u64, &str> = HashMap::new();
    for (id, n) in &l.numbers {
        if let Some(other) = by_number.insert(*n, id) {
            problems.push(format!("sequence {n} given to {id} and {other}"));
        }
    }
    for id in l.delivered.keys() {
        if !l.numbers.contains_key(id) {
            problems.push(format!("{id}: delivered with no sequence number"));
        }
    }
    problems.truncate(40);
    assert!(problems.is_empty(), "seed {seed}:\n{}", problems.join("\n"));
    let _ = std::fs::remove_dir_all(&d);
}

/// What a child (this test binary, run by
/// [`what_a_killed_emitter_confirmed_never_comes_back_and_the_rest_comes_back_once`])
/// does: opens the spool in `SPOOL_MIXED_CHILD` with the configuration
/// `SPOOL_MIXED_CONFIG` says, emits `count` events named `prefix-N` (one
/// line `A id` in the log after each `emit()` that returned `Ok`), and
/// logs each outcome its sink gives (`D id seq`, `F id seq`) before it
/// returns it; then waits to be killed, or drains (`drain`) and exits.
#[test]
fn mixed_child() {
    use std::io::Write;
    let Ok(dir) = std::env::var("SPOOL_MIXED_CHILD") else {
        return;
    };
    let cfg = std::env::var("SPOOL_MIXED_CONFIG").unwrap();
    let parts: Vec<&str> = cfg.split(',').collect();
    let [enc, structured, mapped, segment, prefix, count, drain, seed] = parts[..] else {
        panic!("bad config {cfg}")
    };
    let drain = drain == "1";
    let encoding = match enc {
        "json" => Encoding::Json,
        "http" => Encoding::HttpBinary,
        _ => Encoding::KafkaBinary,
    };
    let log_path = std::path::Path::new(&dir).with_extension("log");
    let file = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap(),
    ));
    struct Logging {
        encoding: Encoding,
        structured: bool,
        rng: fastrand::Rng,
        drain: bool,
        file: Arc<Mutex<std::fs::File>>,
    }
    impl Sink for Logging {
        fn encoding(&self) -> Encoding {
            self.encoding
        }
        fn takes_structured(&self) -> bool {
            self.structured
        }
        fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
            let mut err: Option<SendError> = None;
            let mut lines = String::new();
            for (i, e) in events.iter().enumerate() {
                let n = canonical(e).ok().and_then(|(_, n)| n).unwrap_or(u64::MAX);
                let roll = if self.drain { 0 } else { self.rng.u8(0..100) };
                let retry = match roll {
                    0..50 => {
                        lines.push_str(&format!("D {} {n}\n", e.id()));
                        continue;
                    }
                    50..85 => Retry::LATER,
                    _ => {
                        lines.push_str(&format!("F {} {n}\n", e.id()));
                        Retry::No
                    }
                };
                let f = Error::Transport(format!("mixed {i}"));
                err = Some(match err {
                    None => SendError::at(i..i + 1, retry, f),
                    Some(s) => s.and(i..i + 1, retry, f),
                });
            }
            self.file
                .lock()
                .unwrap()
                .write_all(lines.as_bytes())
                .unwrap();
            err.map_or(Ok(()), Err)
        }
    }
    let em = quick("/agents/mixed")
        .sequence(true)
        .queue_capacity(64)
        .retry(
            RetryPolicy::default()
                .max_attempts(1_000_000)
                .base(Duration::from_millis(1))
                .cap(Duration::from_millis(3)),
        )
        .sink(Logging {
            encoding,
            structured: structured == "1",
            rng: fastrand::Rng::with_seed(seed.parse().unwrap()),
            drain,
            file: file.clone(),
        })
        .spool(
            SpoolConfig::new(&dir)
                .mapped(mapped == "1")
                .segment_bytes(segment.parse().unwrap())
                .sync(SyncPolicy::Never),
        )
        .build()
        .unwrap();
    if drain {
        em.flush_within(Duration::from_secs(60)).unwrap();
        let m = em.metrics();
        em.shutdown().unwrap();
        file.lock()
            .unwrap()
            .write_all(format!("M {} {}\n", m.replayed, m.delivered).as_bytes())
            .unwrap();
        return;
    }
    for i in 0..count.parse::<u64>().unwrap() {
        let id = format!("{prefix}-{i:05}");
        if em.emit(event(&id, i)).is_ok() {
            file.lock()
                .unwrap()
                .write_all(format!("A {id}\n").as_bytes())
                .unwrap();
        }
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn what_a_killed_emitter_confirmed_never_comes_back_and_the_rest_comes_back_once() {
    let seed = std::env::var("SPOOL_MIXED_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("SPOOL_MIXED_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("spool_mixed_kill_{}", std::process::id()));
    let log_path = d.with_extension("log");
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::remove_file(&log_path);
    let runs = 6;
    // Per run: the outcomes logged before it (those must not come back).
    let mut before_kill: Vec<usize> = Vec::new();
    for run in 0..=runs {
        let drain = run == runs;
        let enc = ["json", "http", "kafka"][rng.usize(..3)];
        let cfg = format!(
            "{enc},{},{},{},r{run},{},{},{}",
            u8::from(rng.bool()),
            u8::from(rng.bool()),
            [4096u64, 8192, 65536][rng.usize(..3)],
            rng.u64(200..2000),
            u8::from(drain),
            rng.u64(..)
        );
        eprintln!("run {run}: {cfg}");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "mixed_child", "--nocapture", "--test-threads=1"])
            .env("SPOOL_MIXED_CHILD", &d)
            .env("SPOOL_MIXED_CONFIG", &cfg)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if drain {
            assert!(child.wait().unwrap().success());
        } else {
            std::thread::sleep(Duration::from_millis(rng.u64(50..400)));
            child.kill().unwrap();
            child.wait().unwrap();
            // Wait for the kernel to let the lock go.
            spool_support::wait_until_unlocked(&d);
        }
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        before_kill.push(text.lines().count());
    }
    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut accepted = std::collections::HashSet::new();
    // Per id: (line index, outcome, seq) of each outcome.
    let mut outcomes: HashMap<&str, Vec<(usize, &str, u64)>> = HashMap::new();
    let mut problems = Vec::new();
    let mut metrics = "";
    for (at, l) in lines.iter().enumerate() {
        let f: Vec<&str> = l.split(' ').collect();
        match f[0] {
            "A" => {
                accepted.insert(f[1]);
            }
            "D" | "F" => outcomes
                .entry(f[1])
                .or_default()
                .push((at, f[0], f[2].parse().unwrap())),
            "M" => metrics = l,
            _ => problems.push(format!("bad line {l}")),
        }
    }
    // Which run each line was written in.
    let run_of = |at: usize| before_kill.iter().position(|&n| at < n).unwrap_or(runs);
    let mut dups = 0;
    let mut by_seq: HashMap<u64, &str> = HashMap::new();
    for id in &accepted {
        match outcomes.get(id).map(Vec::as_slice) {
            None | Some([]) => problems.push(format!("{id}: accepted, never delivered nor failed")),
            Some(list) => {
                // An outcome logged then resent: only the batch in flight at
                // a kill (logged in a run that was killed, and in the last
                // lines before the kill).
                for w in list.windows(2) {
                    let (at, _, _) = w[0];
                    let r = run_of(at);
                    let end = before_kill[r];
                    if r == runs || end - at > 400 {
                        problems.push(format!(
                            "{id}: came back after it was confirmed ({:?}, {} lines before run {r} ended)",
                            list,
                            end - at
                        ));
                    }
                    dups += 1;
                }
                let seqs: std::collections::HashSet<u64> = list.iter().map(|o| o.2).collect();
                if seqs.len() != 1 {
                    problems.push(format!("{id}: sequence numbers {seqs:?}"));
                }
                let n = list[0].2;
                if let Some(other) = by_seq.insert(n, id)
                    && other != *id
                {
                    problems.push(format!("sequence {n} given to {id} and {other}"));
                }
            }
        }
    }
    eprintln!(
        "{} accepted, {} with outcomes, {dups} resent after a kill; {metrics}",
        accepted.len(),
        outcomes.len()
    );
    problems.truncate(40);
    assert!(problems.is_empty(), "seed {seed}:\n{}", problems.join("\n"));
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::remove_file(&log_path);
}
