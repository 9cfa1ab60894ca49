//! `ossa-events consume` against a `tansu` broker: records written with raw
//! rdkafka (any headers, key and value), read back by the command.
#![cfg(all(feature = "kafka", feature = "http"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

mod common;

use common::tansu::{Tansu, finish_within, free_port_for_later, interrupt};

/// A header: its name and value (`None`: a null value).
type Header<'a> = (&'a str, Option<&'a [u8]>);

/// One record to write: headers (a `None` value is a null header value),
/// key and value.
struct Rec<'a> {
    headers: &'a [Header<'a>],
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

fn produce(bootstrap: &str, topic: &str, recs: &[Rec<'_>]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for r in recs {
        let mut h = OwnedHeaders::new();
        for (k, v) in r.headers {
            h = h.insert(rdkafka::message::Header { key: k, value: *v });
        }
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).headers(h);
        if let Some(k) = r.key {
            rec = rec.key(k);
        }
        if let Some(v) = r.value {
            rec = rec.payload(v);
        }
        p.send(rec).map_err(|(e, _)| e).unwrap();
    }
    p.flush(Duration::from_secs(10)).unwrap();
}

/// Runs `ossa-events ARGS` within `limit`: (exit code, stdout, stderr).
fn run(args: &[&str], limit: Duration) -> (Option<i32>, String, String) {
    common::tansu::run_cli(env!("CARGO_BIN_EXE_ossa-events"), args, limit)
}

/// Each error line of `err` said once (a broker that is down alternates
/// between two errors: each was said again at every switch).
fn each_error_once(err: &str) {
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    for l in &lines {
        assert_eq!(
            lines.iter().filter(|m| *m == l).count(),
            1,
            "said again: {l}\n{err}"
        );
    }
}

/// With `--group`, brokers that never answer: the topic was never read, so
/// `--timeout` ends in failure (as without `--group`), and within the
/// timeout, not after the metadata wait *and* the timeout.
#[test]
fn consume_with_a_group_and_no_broker_fails_within_the_timeout() {
    let b = format!("127.0.0.1:{}", common::dead_port());
    let t = Instant::now();
    let (code, out, err) = run(
        &[
            "consume",
            "--brokers",
            &b,
            "--topic",
            "t",
            "--group",
            "g",
            "--timeout",
            "2",
        ],
        Duration::from_secs(30),
    );
    let took = t.elapsed();
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        took < Duration::from_millis(3500),
        "--timeout 2 took {took:?}"
    );
    each_error_once(&err);
}

/// With `--group`, brokers that come up only after the metadata wait, and
/// no such topic there: refused as a missing topic is when the brokers
/// answer at once, not waited on until `--timeout` ends in success.
#[test]
fn consume_with_a_group_refuses_a_missing_topic_once_late_brokers_answer() {
    let port = free_port_for_later();
    let b = format!("127.0.0.1:{port}");
    let t = Instant::now();
    let consume = thread::spawn(move || {
        run(
            &[
                "consume",
                "--brokers",
                &b,
                "--topic",
                "nope",
                "--group",
                "g",
                "--timeout",
                "40",
            ],
            Duration::from_secs(90),
        )
    });
    // After consume's 10 s metadata wait.
    thread::sleep(Duration::from_secs(11));
    let _broker = Tansu::start_on(port);
    let (code, out, err) = consume.join().unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("topic 'nope' not found"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
}

/// The offset group `group` committed on partition 0 of `topic`.
fn committed(bootstrap: &str, group: &str, topic: &str) -> rdkafka::Offset {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    got.elements()[0].offset()
}

/// Four binary-mode events, ids 0 to 3, on partition 0 of `topic`.
fn four_events(bootstrap: &str, topic: &str) {
    let ids = ["0", "1", "2", "3"];
    let headers: Vec<[Header<'_>; 4]> = ids
        .iter()
        .map(|id| {
            [
                ("ce_specversion", Some(&b"1.0"[..])),
                ("ce_id", Some(id.as_bytes())),
                ("ce_source", Some(&b"/s"[..])),
                ("ce_type", Some(&b"t"[..])),
            ]
        })
        .collect();
    let recs: Vec<Rec<'_>> = headers
        .iter()
        .map(|h| Rec {
            headers: h,
            key: None,
            value: None,
        })
        .collect();
    produce(bootstrap, topic, &recs);
}

/// With `--group`, a record that could not be printed (stdout closed) is
/// not committed: the group reads it again, rather than losing it; the
/// summary line still ends the run.
#[test]
fn consume_with_a_group_does_not_commit_a_record_it_could_not_print_and_sums_up() {
    let broker = Tansu::start();
    let b = broker.bootstrap();
    broker.create_topic("q", 1);
    four_events(&b, "q");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ossa-events"))
        .args(["consume", "--brokers", &b, "--topic", "q", "--group", "g"])
        .args(["--from-beginning", "--timeout", "10"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let (st, err) = finish_within(
        &mut child,
        Duration::from_secs(30),
        "consume, stdout closed",
    );
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("cannot write to stdout"), "{err}");
    // The summary still ends the run.
    assert!(err.contains("consume: printed 0, invalid 0"), "{err}");
    let off = committed(&b, "g", "q");
    assert!(
        matches!(off, rdkafka::Offset::Invalid | rdkafka::Offset::Offset(0)),
        "committed {off:?}, though nothing was printed"
    );
}

/// SIGINT while the brokers are looked for (the first 10 s when they do
/// not answer) stops `consume` as it does later: summary, exit 130, at once.
#[test]
fn consume_stopped_by_sigint_while_waiting_for_the_brokers_exits_130() {
    let b = format!("127.0.0.1:{}", common::dead_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ossa-events"))
        .args(["consume", "--brokers", &b, "--topic", "t", "--group", "g"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_secs(1));
    let (st, took, err) = interrupt(&mut child, Duration::from_secs(30));
    assert_eq!(st.code(), Some(130), "{st:?}: {err}");
    assert!(err.contains("consume: printed 0, invalid 0"), "{err}");
    assert!(err.contains("stopped by SIGINT"), "{err}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// An empty value is empty data, no value is no data (binding 3.2.2), as
/// `consume` reads them through rdkafka: text, and bytes without a type.
#[test]
fn consume_tells_an_empty_value_from_no_value() {
    let broker = Tansu::start();
    let b = broker.bootstrap();
    broker.create_topic("e", 1);
    let h: [Header<'_>; 5] = [
        ("ce_specversion", Some(&b"1.0"[..])),
        ("ce_id", Some(&b"1"[..])),
        ("ce_source", Some(&b"/s"[..])),
        ("ce_type", Some(&b"t"[..])),
        ("content-type", Some(&b"text/plain"[..])),
    ];
    let h2: [Header<'_>; 4] = [
        ("ce_specversion", Some(&b"1.0"[..])),
        ("ce_id", Some(&b"2"[..])),
        ("ce_source", Some(&b"/s"[..])),
        ("ce_type", Some(&b"t"[..])),
    ];
    produce(
        &b,
        "e",
        &[
            Rec {
                headers: &h,
                key: None,
                value: Some(b""),
            },
            Rec {
                headers: &h,
                key: None,
                value: None,
            },
            Rec {
                headers: &h2,
                key: Some(b""),
                value: Some(b""),
            },
            Rec {
                headers: &h2,
                key: None,
                value: None,
            },
        ],
    );
    let (code, out, err) = run(
        &[
            "consume",
            "--brokers",
            &b,
            "--topic",
            "e",
            "--from-beginning",
            "--timeout",
            "2",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let base = r#""specversion":"1.0","id":"#;
    assert_eq!(
        lines,
        [
            format!(
                r#"{{{base}"1","source":"/s","type":"t","datacontenttype":"text/plain","data":""}}"#
            ),
            format!(r#"{{{base}"1","source":"/s","type":"t","datacontenttype":"text/plain"}}"#),
            format!(r#"{{{base}"2","source":"/s","type":"t","data_base64":""}}"#),
            format!(r#"{{{base}"2","source":"/s","type":"t"}}"#),
        ],
        "{err}"
    );
}

/// SIGINT once the brokers are gone: the commit and the close cannot be
/// answered, and librdkafka waited 45 s for each (90 s before the summary
/// and exit 130). Bounded now, and said; with and without `--group`.
#[test]
fn consume_stopped_by_sigint_after_the_brokers_went_away_exits_promptly() {
    use std::io::BufRead;
    for group in [Some("g"), None] {
        let broker = Tansu::start();
        let b = broker.bootstrap();
        broker.create_topic("s", 1);
        four_events(&b, "s");
        let mut args = vec![
            "consume",
            "--brokers",
            &b,
            "--topic",
            "s",
            "--from-beginning",
        ];
        if let Some(g) = group {
            args.extend(["--group", g]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_ossa-events"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        for _ in 0..4 {
            let mut line = String::new();
            assert!(out.read_line(&mut line).unwrap() > 0, "consume ended early");
        }
        drop(broker);
        thread::sleep(Duration::from_millis(500));
        let (st, took, err) = interrupt(&mut child, Duration::from_secs(120));
        assert_eq!(st.code(), Some(130), "{group:?}: {err}");
        assert!(
            err.contains("consume: printed 4, invalid 0"),
            "{group:?}: {err}"
        );
        assert!(err.contains("stopped by SIGINT"), "{group:?}: {err}");
        assert!(
            took < Duration::from_secs(15),
            "{group:?}: exit took {took:?}: {err}"
        );
    }
}

/// A header with a null value is read as absent: a null `content-type`
/// beside `ce_datacontenttype` leaves the latter the event's (it was
/// refused as "datacontenttype appears more than once"), and a null
/// `ce_subject` is no subject (it was an empty, invalid one).
#[test]
fn consume_reads_a_header_with_a_null_value_as_absent() {
    let broker = Tansu::start();
    let b = broker.bootstrap();
    broker.create_topic("n", 1);
    let h: [Header<'_>; 7] = [
        ("ce_specversion", Some(&b"1.0"[..])),
        ("ce_id", Some(&b"1"[..])),
        ("ce_source", Some(&b"/s"[..])),
        ("ce_type", Some(&b"t"[..])),
        ("content-type", None),
        ("ce_datacontenttype", Some(&b"application/json"[..])),
        ("ce_subject", None),
    ];
    produce(
        &b,
        "n",
        &[Rec {
            headers: &h,
            key: None,
            value: Some(br#"{"a":1}"#),
        }],
    );
    let (code, out, err) = run(
        &[
            "consume",
            "--brokers",
            &b,
            "--topic",
            "n",
            "--from-beginning",
            "--timeout",
            "2",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":{"a":1}}"#
        ],
        "{err}"
    );
    assert!(err.contains("consume: printed 1, invalid 0"), "{err}");
}
