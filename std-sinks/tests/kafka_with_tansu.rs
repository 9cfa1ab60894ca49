//! `KafkaSink` and the `emit --sink kafka` / `consume` commands against a
//! real Kafka-protocol broker process: `tansu` (in-memory storage), started
//! on a free loopback port for each test and killed when its guard drops.
//!
//! * 50 000 events in each content mode through an [`Emitter`], read back
//!   with an rdkafka consumer and our binding parser: the same ids,
//!   attributes, data, headers and keys (keys from `partitionkey`, and from
//!   `key_field("ossaagentid")`), each exactly once;
//! * `emit --demo --sink kafka` in both modes, then `consume
//!   --from-beginning --max-events 15` prints the 15 demo events (and reports
//!   and skips a record that is not a CloudEvent);
//! * the broker not running when the emitter starts, then started: every
//!   event delivered exactly once, through the emitter's retries;
//! * `kcat` (another client) reads the same records as the rdkafka consumer;
//! * a topic that does not exist: every event failed and reported, no retry.
//!
//! tansu is found through `OSSA_TANSU`, then
//! `$HOME/.cache/ossa-events-tools/bin/tansu`, then `PATH`;
//! `bash scripts/test.sh` builds it there when it is missing.
#![cfg(feature = "kafka")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

mod common;

use common::kafka_events::{Spec, check_record, event, specs};
use common::tansu::{Tansu, free_port_for_later};
use ossa_events::sink::{KafkaMode, KafkaSink};
use ossa_events::{BreakerConfig, Emitter, Overflow, Reason, RetryPolicy};

// The broker: `common::tansu` (shared with the examples test).

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

/// One record read back.
#[derive(Debug, Clone)]
struct Rec {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
}

/// Reads every partition of `topic` from the beginning with an rdkafka
/// consumer until `want` records came (then 500 ms more: any extra record
/// is a duplicate) or `limit` passed.
fn read_back(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    want: usize,
    limit: Duration,
) -> Vec<Rec> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ossa-events-tansu-test")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let end = Instant::now() + limit;
    let mut out = Vec::with_capacity(want);
    let mut quiet_until: Option<Instant> = None;
    while Instant::now() < end && quiet_until.is_none_or(|q| Instant::now() < q) {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), h.value.unwrap_or(&[]).to_vec()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Rec {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers,
                });
                if out.len() >= want && quiet_until.is_none() {
                    quiet_until = Some(Instant::now() + Duration::from_millis(500));
                }
            }
            Some(Err(e)) => panic!("consumer: {e}"),
            None => {}
        }
    }
    out
}

/// Parses every record with our binding parser and checks it against its
/// spec: the same event, key and headers. Then: every spec exactly once.
fn check_records(recs: &[Rec], specs: &[Spec], mode: KafkaMode) {
    let by_id: HashMap<&str, &Spec> = specs.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut seen = HashSet::new();
    for r in recs {
        let at = format!("partition {} offset {}", r.partition, r.offset);
        let (key, value) = (r.key.as_deref(), r.value.as_deref());
        // `key_field`: each spec says whether its sink had one.
        let spec = check_record(&r.headers, key, value, &by_id, mode, true, &at);
        assert!(seen.insert(spec.id.as_str()), "{} read twice", spec.id);
    }
    assert_eq!(seen.len(), specs.len(), "events lost");
}

/// One record as `kcat` printed it.
#[derive(Debug)]
struct KcatRec {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    /// kcat's `%h`: `name=value` pairs joined by `,`.
    headers: String,
}

/// kcat's record terminator (after the headers, which may hold newlines).
const KCAT_END: &str = "\u{1e}\u{1f}\n";

/// Reads every record of `topic` with `kcat` (Debian package `kcat`,
/// librdkafka's command-line client; `scripts/test.sh` installs it), in a
/// length-prefixed format so keys and values come back byte for byte.
///
/// `None` when kcat cannot talk to this tansu process at all: Debian's
/// librdkafka 2.0.2 (kcat's) misreads tansu 0.6's `ApiVersions` response
/// for some orders of its API keys, and tansu lists them in a different
/// order in each process (a hash map); our librdkafka 2.12 reads them all.
/// Only that failure, confirmed with kcat's protocol debug log, is let
/// through.
fn kcat_read(bootstrap: &str, topic: &str) -> Option<Vec<KcatRec>> {
    let format = format!("%p %o %K %S\n%k%s%h{KCAT_END}");
    let child = Command::new("kcat")
        .args([
            "-C",
            "-b",
            bootstrap,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
        ])
        .args(["-f", &format])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("kcat could not start ({e}): `bash scripts/test.sh` installs it (apt kcat)")
        });
    let out = child.wait_with_output().unwrap();
    if !out.status.success() && kcat_misreads_api_versions(bootstrap) {
        return None;
    }
    assert!(
        out.status.success(),
        "kcat: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut recs = Vec::new();
    let mut rest = out.stdout.as_slice();
    while !rest.is_empty() {
        let nl = rest.iter().position(|&b| b == b'\n').unwrap();
        let head = std::str::from_utf8(&rest[..nl]).unwrap();
        let f: Vec<i64> = head.split(' ').map(|n| n.parse().unwrap()).collect();
        rest = &rest[nl + 1..];
        let mut take = |len: i64| -> Option<Vec<u8>> {
            let len = usize::try_from(len).ok()?;
            let (v, r) = rest.split_at(len);
            rest = r;
            Some(v.to_vec())
        };
        let key = take(f[2]);
        let value = take(f[3]);
        let end = rest
            .windows(KCAT_END.len())
            .position(|w| w == KCAT_END.as_bytes())
            .unwrap();
        let headers = String::from_utf8(rest[..end].to_vec()).unwrap();
        rest = &rest[end + KCAT_END.len()..];
        recs.push(KcatRec {
            partition: f[0] as i32,
            offset: f[1],
            key,
            value,
            headers,
        });
    }
    Some(recs)
}

/// Whether kcat's librdkafka fails to read the broker's `ApiVersions`
/// response (see [`kcat_read`]), from its protocol debug log.
fn kcat_misreads_api_versions(bootstrap: &str) -> bool {
    let out = Command::new("kcat")
        .args(["-L", "-b", bootstrap, "-m", "3", "-d", "protocol"])
        .stdin(Stdio::null())
        .output();
    out.is_ok_and(|o| {
        String::from_utf8_lossy(&o.stderr).contains("Protocol read buffer underflow for ApiVersion")
    })
}

/// kcat saw exactly the records the rdkafka consumer saw: same positions,
/// keys, values and headers.
fn same_records_as_kcat(recs: &[Rec], kcat: &[KcatRec]) {
    assert_eq!(
        kcat.len(),
        recs.len(),
        "kcat read a different number of records"
    );
    let by_pos: HashMap<(i32, i64), &KcatRec> =
        kcat.iter().map(|k| ((k.partition, k.offset), k)).collect();
    for r in recs {
        let k = by_pos
            .get(&(r.partition, r.offset))
            .unwrap_or_else(|| panic!("kcat lacks partition {} offset {}", r.partition, r.offset));
        assert_eq!(k.key, r.key, "key at {}/{}", r.partition, r.offset);
        assert_eq!(k.value, r.value, "value at {}/{}", r.partition, r.offset);
        let want: Vec<String> = r
            .headers
            .iter()
            .map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(v)))
            .collect();
        assert_eq!(
            k.headers,
            want.join(","),
            "headers at {}/{}",
            r.partition,
            r.offset
        );
    }
}

/// An emitter on a `KafkaSink` to `topic`, batches of 1 000.
fn emitter(bootstrap: &str, topic: &str, mode: KafkaMode, keyed: bool) -> Emitter {
    let mut sink = KafkaSink::builder(bootstrap, topic)
        .mode(mode)
        .delivery_timeout(Duration::from_secs(20));
    if keyed {
        sink = sink.key_field("ossaagentid");
    }
    Emitter::builder("/agents/kafka-test")
        .sink(sink.build().unwrap())
        .batch_size(1000)
        .queue_capacity(100_000)
        .queue_bytes(256 << 20)
        .overflow(Overflow::Block(Duration::from_secs(30)))
        .flush_timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn fifty_thousand_round_trip(mode: KafkaMode) {
    const HALF: usize = 25_000;
    const PARTITIONS: u32 = 3;
    let broker = Tansu::start();
    let topic = "events";
    broker.create_topic(topic, PARTITIONS);
    let bootstrap = broker.bootstrap();
    let t = Instant::now();

    // Keys from `partitionkey` only, then from `partitionkey` else `ossaagentid`.
    let plain = specs("plain", HALF, false);
    let keyed = specs("keyed", HALF, true);
    for (all, k) in [(&plain, false), (&keyed, true)] {
        let em = emitter(&bootstrap, topic, mode, k);
        for s in all {
            em.emit_event(&event(s)).unwrap();
        }
        let report = em.flush().unwrap();
        assert_eq!((report.delivered, report.failed), (HALF as u64, 0));
        em.shutdown().unwrap();
    }
    let sent = t.elapsed();

    let t = Instant::now();
    let recs = read_back(
        &bootstrap,
        topic,
        PARTITIONS as i32,
        2 * HALF,
        Duration::from_secs(40),
    );
    let read = t.elapsed();
    let mut all = plain;
    all.extend(keyed);
    check_records(&recs, &all, mode);
    // A second, independent client reads the same records.
    match kcat_read(&bootstrap, topic) {
        Some(by_kcat) => same_records_as_kcat(&recs, &by_kcat),
        None => eprintln!(
            "{mode:?}: kcat's librdkafka 2.0.2 cannot read this tansu process's ApiVersions \
             response (its API keys came in an order it misreads): kcat's cross-check skipped"
        ),
    }
    eprintln!("{mode:?}: 50 000 events sent in {sent:?}, read back in {read:?}");
}

#[test]
fn fifty_thousand_binary_events_read_back_exactly() {
    fifty_thousand_round_trip(KafkaMode::Binary);
}

#[test]
fn fifty_thousand_structured_events_read_back_exactly() {
    fifty_thousand_round_trip(KafkaMode::Structured);
}

#[test]
fn broker_not_running_at_start_then_started_gets_every_event() {
    const N: usize = 500;
    let port = free_port_for_later();
    let bootstrap = format!("127.0.0.1:{port}");
    let topic = "late";
    // A delivery timeout shorter than the broker's absence: librdkafka gives
    // the events up, and the emitter's retries (not librdkafka holding them)
    // must deliver them.
    //
    // Neither side may back off for long once the broker is there: by
    // default librdkafka waits up to 10 s between reconnects and the
    // emitter's circuit breaker doubles its wait from 5 s after each failed
    // probe, so a probe that landed in librdkafka's wait could push the
    // delivery past the flush timeout (a CI run failed so, once, with
    // `Timeout(Flush)` after 40 s; 8 runs here passed in 3-16 s).
    let sink = KafkaSink::builder(&bootstrap, topic)
        .delivery_timeout(Duration::from_millis(800))
        .set("reconnect.backoff.max.ms", "200")
        .build()
        .unwrap();
    let em = Emitter::builder("/agents/kafka-test")
        .sink(sink)
        .circuit_breaker(
            BreakerConfig::default()
                .open_for(Duration::from_millis(200))
                .max_open_for(Duration::from_secs(1)),
        )
        .flush_interval(Duration::from_millis(10))
        .flush_timeout(Duration::from_secs(40))
        .retry(
            RetryPolicy::default()
                .base(Duration::from_millis(200))
                .cap(Duration::from_millis(500))
                .max_attempts(200),
        )
        .build()
        .unwrap();
    let all = specs("late", N, false);
    for s in &all {
        em.emit_event(&event(s)).unwrap();
    }
    let end = Instant::now() + Duration::from_secs(20);
    while em.metrics().retried == 0 && Instant::now() < end {
        thread::sleep(Duration::from_millis(20));
    }
    let m = em.metrics();
    assert!(m.retried > 0, "the emitter did not retry: {m:?}");
    assert_eq!((m.delivered, m.failed), (0, 0), "{m:?}");
    let broker = Tansu::start_on(port);
    broker.create_topic(topic, 1);
    let report = em.flush().unwrap();
    assert_eq!((report.delivered, report.failed), (N as u64, 0));
    em.shutdown().unwrap();
    let recs = read_back(&bootstrap, topic, 1, N, Duration::from_secs(20));
    // Every event exactly once, though each was given to librdkafka several times.
    check_records(&recs, &all, KafkaMode::Binary);
}

#[test]
fn a_missing_topic_fails_every_event_reported_and_not_retried() {
    // tansu does not create topics on demand: the topic stays missing.
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    let sink = KafkaSink::builder(&bootstrap, "no-such-topic")
        // librdkafka waits this long for a new topic to appear (default 30 s).
        .set("topic.metadata.propagation.max.ms", "1000")
        .delivery_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let reported = Arc::new(Mutex::new(Vec::<(Reason, String)>::new()));
    let r2 = reported.clone();
    let em = Emitter::builder("/agents/kafka-test")
        .sink(sink)
        .flush_interval(Duration::from_millis(10))
        .retry(RetryPolicy::default().max_attempts(1000))
        .on_undelivered(move |u| r2.lock().unwrap().push((u.reason, u.error.to_string())))
        .build()
        .unwrap();
    let all = specs("missing", 50, false);
    for s in &all {
        em.emit_event(&event(s)).unwrap();
    }
    let t = Instant::now();
    let report = em.flush().unwrap();
    let took = t.elapsed();
    assert_eq!((report.delivered, report.failed), (0, 50), "{report:?}");
    let m = em.metrics();
    assert_eq!(m.retried, 0, "a missing topic was retried: {m:?}");
    let got = reported.lock().unwrap().clone();
    assert_eq!(got.len(), 50);
    assert!(
        got.iter()
            .all(|(r, e)| *r == Reason::Failed && e.contains("nknown")),
        "{:?}",
        got.first()
    );
    // Bounded by the propagation wait, far below the delivery timeout.
    assert!(took < Duration::from_secs(15), "{took:?}");
    em.shutdown().unwrap();
}

// ---------------------------------------------------------------------------
// The binaries (the `ossa-events` binary needs the `http` feature too)
// ---------------------------------------------------------------------------

#[cfg(feature = "http")]
mod cli {
    use super::*;
    use serde_json::Value;

    /// The attributes that differ from one demo run to the next.
    const PER_RUN: [&str; 6] = [
        "id",
        "time",
        "ossatraceid",
        "ossainteractionid",
        "ossaspanid",
        "traceparent",
    ];

    fn strip_per_run(ev: &Value) -> Value {
        let mut v = ev.clone();
        let o = v.as_object_mut().unwrap();
        for k in PER_RUN {
            o.remove(k);
        }
        v
    }

    /// The demo run made in this process, as `consume` prints it.
    fn demo_reference() -> Vec<Value> {
        let mut lines = Vec::new();
        ossa_events::demo::agent_run(
            "/ossa/demo/researcher",
            &ossa_events::SystemClock,
            &mut ossa_events::FastIds,
            |ev| ossa_events::format::json::write_jsonl(ev, &mut lines),
        )
        .unwrap();
        String::from_utf8(lines)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Runs `ossa-events ARGS` within `limit`: (exit code, stdout, stderr).
    fn run(args: &[&str], limit: Duration) -> (Option<i32>, String, String) {
        common::tansu::run_cli(env!("CARGO_BIN_EXE_ossa-events"), args, limit)
    }

    #[test]
    fn emit_demo_to_kafka_then_consume_prints_the_15_demo_events() {
        let broker = Tansu::start();
        let bootstrap = broker.bootstrap();
        let reference: Vec<Value> = demo_reference().iter().map(strip_per_run).collect();
        assert_eq!(reference.len(), 15);

        // A record that is no CloudEvent first: reported, skipped, not counted.
        broker.create_topic("mixed", 1);
        {
            use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
            let p: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .create()
                .unwrap();
            p.send(BaseRecord::<(), _>::to("mixed").payload("not an event"))
                .unwrap();
            p.flush(Duration::from_secs(10)).unwrap();
        }

        for (mode, topic) in [
            ("binary", "demo-binary"),
            ("structured", "demo-structured"),
            ("binary", "mixed"),
        ] {
            if topic != "mixed" {
                broker.create_topic(topic, 3);
            }
            let args = [
                "emit",
                "--demo",
                "--sink",
                "kafka",
                "--brokers",
                &bootstrap,
                "--topic",
                topic,
                "--mode",
                mode,
                "--key-field",
                "ossaagentid",
            ];
            let (code, out, err) = run(&args, Duration::from_secs(30));
            assert_eq!(code, Some(0), "{args:?}: {err}");
            assert!(out.is_empty(), "{out}");
            assert!(
                err.contains(
                    "emit: read 15, delivered 15, retried 0, failed 0, dropped 0, invalid 0"
                ),
                "{err}"
            );

            let args = [
                "consume",
                "--kafka",
                &bootstrap,
                "--topic",
                topic,
                "--from-beginning",
                "--max-events",
                "15",
                "--timeout",
                "10",
            ];
            let (code, out, err) = run(&args, Duration::from_secs(30));
            assert_eq!(code, Some(0), "{args:?}: {err}");
            let got: Vec<Value> = out
                .lines()
                .map(|l| strip_per_run(&serde_json::from_str(l).unwrap()))
                .collect();
            assert_eq!(got.len(), 15, "{topic}: {out}\n{err}");
            // Three partitions: order holds only within a key; compare as sets.
            for want in &reference {
                assert!(got.contains(want), "{topic}: missing {want}");
            }
            if topic == "mixed" {
                assert!(err.contains("partition 0 offset 0: "), "{err}");
                assert!(err.contains("consume: printed 15, invalid 1"), "{err}");
            } else {
                assert!(err.contains("consume: printed 15, invalid 0"), "{err}");
            }
        }
    }

    /// Issue 11: SIGINT stops `consume` at its next poll, commits its group's
    /// offsets and exits 130: a second consumer of the group starts after
    /// what the first printed.
    #[test]
    fn consume_stops_on_sigint_commits_and_exits_130() {
        use std::io::BufRead;
        let broker = Tansu::start();
        let bootstrap = broker.bootstrap();
        broker.create_topic("signals", 1);
        let (code, _, err) = run(
            &[
                "emit",
                "--demo",
                "--sink",
                "kafka",
                "--brokers",
                &bootstrap,
                "--topic",
                "signals",
            ],
            Duration::from_secs(60),
        );
        assert_eq!(code, Some(0), "{err}");
        let consume = |limit: Option<&str>| {
            let mut args = vec![
                "consume",
                "--kafka",
                &bootstrap,
                "--topic",
                "signals",
                "--group",
                "g",
                "--from-beginning",
            ];
            if let Some(t) = limit {
                args.extend(["--timeout", t]);
            }
            args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_ossa-events"))
            .args(consume(None))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        for _ in 0..15 {
            let mut line = String::new();
            assert!(out.read_line(&mut line).unwrap() > 0, "consume ended early");
        }
        let (st, _, err) = common::tansu::interrupt(&mut child, Duration::from_secs(10));
        assert_eq!(st.code(), Some(130), "{err}");
        assert!(err.contains("consume: printed 15, invalid 0"), "{err}");
        assert!(err.contains("stopped by SIGINT"), "{err}");
        // Committed: the group goes on after the 15 events. (A consumer
        // that joins the group again gets no partition from tansu within
        // seconds, so the run below alone would pass without any commit.)
        let committed: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "g")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition("signals", 0);
        let got = committed
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap();
        assert_eq!(got.elements()[0].offset(), Offset::Offset(15));
        let args = consume(Some("2"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = run(&args, Duration::from_secs(30));
        assert_eq!(code, Some(0), "{err}");
        assert!(out.is_empty(), "read again after the commit: {out}");
    }

    #[test]
    fn consume_stops_after_the_timeout_and_refuses_bad_arguments() {
        let broker = Tansu::start();
        let bootstrap = broker.bootstrap();
        broker.create_topic("empty", 1);
        let t = Instant::now();
        let (code, out, err) = run(
            &[
                "consume",
                "--kafka",
                &bootstrap,
                "--topic",
                "empty",
                "--timeout",
                "1",
            ],
            Duration::from_secs(20),
        );
        assert_eq!(code, Some(0), "{err}");
        assert!(out.is_empty());
        assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
        for args in [
            &["consume", "--topic", "t"][..],
            &["consume", "--kafka", "x:1"],
            &[
                "consume",
                "--kafka",
                "x:1",
                "--topic",
                "t",
                "--max-events",
                "0",
            ],
            &["consume", "--kafka", "x:1", "--topic", "t", "--nope"],
            &["emit", "--sink", "kafka", "--topic", "t"],
            &[
                "emit",
                "--sink",
                "kafka",
                "--brokers",
                "x:1",
                "--topic",
                "t",
                "--mode",
                "batched",
            ],
        ] {
            let (code, _, err) = run(args, Duration::from_secs(20));
            assert_eq!(code, Some(2), "{args:?}: {err}");
        }
    }
}
